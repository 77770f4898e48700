"""Fixtures for the webhook tests: a certificate, the receiver over real HTTP, an in-process worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from graphsim.server import SimServer
from graphsim.threaded_server import ThreadedServer
from graphworks_core.settings import Settings
from tests.integration.conftest import Pipeline, make_settings, running_pipeline
from webhooks.app import ReceiverApp
from worker.subscriptions.crypto import KeyStore
from worker.subscriptions.manager import SubscriptionManager
from worker.subscriptions.renewal import build_manager

CERT_ID = "graphworks-test-cert"
CLIENT_ID = "graphworks-test-client"


def make_key_pem(directory: Path, cert_id: str = CERT_ID) -> Path:
    """A fresh RSA key and self-signed certificate in `<dir>/<cert_id>.pem`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphworks test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = directory / f"{cert_id}.pem"
    path.write_bytes(pem + cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("webhook-keys")
    make_key_pem(directory)
    return directory


def webhook_settings(redis_url: str, sim: SimServer, key_dir: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "graph_client_id": CLIENT_ID,
        "webhook_jwks_url": f"{sim.root_url}/_sim/jwks",
        "webhook_encryption_keys": key_dir,
        "webhook_encryption_cert_id": CERT_ID,
    }
    values.update(extra)
    return make_settings(redis_url, sim, **values)


def receiver_server(app: object, port: int = 0) -> ThreadedServer:
    """An ASGI app (the receiver, or a stand-in) served over HTTP in a thread, started."""
    return ThreadedServer(app, port=port, name="receiver", lifespan="on").start()


@dataclass
class Receiving:
    """The receiver over HTTP and what stands behind it."""

    url: str
    app: ReceiverApp
    settings: Settings

    @property
    def notify_url(self) -> str:
        return f"{self.url}/webhooks/graph"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.url}/webhooks/graph/lifecycle"


@pytest.fixture
def receiver(redis: aioredis.Redis, redis_url: str, graphsim: SimServer, key_dir: Path) -> Iterator[Receiving]:
    """The receiver app served by uvicorn in its own thread (graphsim reaches it over HTTP)."""
    settings = webhook_settings(redis_url, graphsim, key_dir)
    app = ReceiverApp(settings)
    server = receiver_server(app)
    try:
        yield Receiving(server.url, app, settings)
    finally:
        server.stop()


@pytest.fixture
async def notif_pipeline(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, key_dir: Path
) -> AsyncIterator[Pipeline]:
    """Like tests/integration's `pipeline`, with the webhook settings (keys, client id)."""
    async with running_pipeline(redis, graphsim, webhook_settings(redis_url, graphsim, key_dir)) as pipe:
        yield pipe


def manager_for(pipe: Pipeline) -> SubscriptionManager:
    return build_manager(pipe.runner.graph, pipe.redis, pipe.settings, pipe.clock, pipe.runner.queue)


def key_store(key_dir: Path) -> KeyStore:
    return KeyStore.from_path(key_dir, CERT_ID)
