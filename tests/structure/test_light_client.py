"""`import worker.client` is all service code writes to enqueue: it must stay light.

Run in a fresh interpreter, so what the test process already imported does not hide anything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import worker.client

# Heavy parts the enqueue path must never load: the Graph SDK and its HTTP stack, identity
# libraries, crypto, the ASGI server and framework.
FORBIDDEN = ("msgraph", "msgraph_core", "kiota", "azure", "msal", "cryptography", "uvicorn", "starlette")


def loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0].startswith(FORBIDDEN)}


def test_import_worker_client_loads_no_graph_sdk_identity_crypto_or_asgi() -> None:
    ours = heavy(loaded_after("import worker.client"))
    # redis-py itself imports PyJWT, which imports cryptography when it is installed
    # (redis.auth.token): that much comes with any Redis client. We add nothing to it.
    redis_alone = heavy(loaded_after("import redis.asyncio"))
    assert ours - redis_alone == set(), f"worker.client loads {sorted(ours - redis_alone)[:10]}"
    assert not {m for m in ours if not m.startswith("cryptography")}


def test_the_client_loads_no_processor() -> None:
    loaded = loaded_after("import worker.client")
    assert not {m for m in loaded if m.startswith(("processors", "webhooks", "ratelimits", "graphworks."))}


def test_the_public_surface() -> None:
    assert sorted(worker.client.__all__) == [
        "EnqueueError",
        "Enqueued",
        "GraphworksClient",
        "IdempotencyConflict",
        "JobEvent",
        "JobNotFound",
        "JobPage",
        "JobRequest",
        "JobStatus",
        "NotCancellable",
        "PayloadInvalid",
        "Progress",
        "QueueUnavailable",
        "WaitTimedOut",
        "validate_payload",
    ]
    for name in worker.client.__all__:
        assert hasattr(worker.client, name)
