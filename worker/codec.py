"""arq's job and result (de)serializer: JSON, never pickle. Decoding never raises.

A job record that is not JSON (a poison message written by anything but us) decodes into a
call of the runner with the raw text, so the runner dead-letters it as "undecodable" instead
of arq failing it silently or a worker crash-looping on it.
"""

from __future__ import annotations

import json
import time
from typing import Any

RUNNER_FUNCTION = "graphworks_job"


def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
        if isinstance(obj, dict) and "f" in obj and "a" in obj:
            return obj
        if isinstance(obj, dict) and "s" in obj:  # a result record
            return obj
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    raw = data.decode("utf-8", errors="replace")
    return {"t": None, "f": RUNNER_FUNCTION, "a": [raw], "k": {}, "et": int(time.time() * 1000)}


def job_record(envelope_json: str, enqueue_ms: int) -> bytes:
    """An arq job record calling the runner with one envelope."""
    return serialize({"t": None, "f": RUNNER_FUNCTION, "a": [envelope_json], "k": {}, "et": enqueue_ms})
