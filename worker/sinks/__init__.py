"""Where inbound messages and sync changes go: a Redis Stream (default), an HTTP callback, or a
Python callable; chosen by settings (INBOUND_SINK) or set in code with `set_sink`."""

from worker.sinks.base import ExternalSink, Sink, SinkRecord, TransactionalSink
from worker.sinks.factory import set_sink, sink_for

__all__ = ["ExternalSink", "Sink", "SinkRecord", "TransactionalSink", "set_sink", "sink_for"]
