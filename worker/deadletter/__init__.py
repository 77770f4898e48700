"""The dead-letter store: jobs that will not be retried any more.

models.py        the entry (from_envelope / to_envelope / redacted) and the filter
store.py         the protocol every store implements
redis_store.py   the Redis store (entries hash + time index; survives a restart with AOF)
memory_store.py  the in-process store (tests, one process)
export.py        JSONL export
"""
