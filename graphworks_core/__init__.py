"""Primitives every other package uses; they import nothing of ours above them.

clock.py        the one seam for time (SystemClock, FakeClock)
errors.py       the exception tree and the error classes
keys.py         every Redis key graphworks writes
settings.py     environment settings (pydantic-settings)
envelope.py     the job envelope, its attempt history and error fields, its JSON codec
payloads.py     each job type's payload model
resource_path.py  parsing Graph resource paths a notification names
retry_after.py  Retry-After as seconds
redact.py       masking secrets before anything is stored or logged
startup_heap.py moving the startup heap out of the collector's full passes
"""
