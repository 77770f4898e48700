"""graphsim's change-notification side: stored subscriptions, their expiry, and what Graph signs and encrypts.

Rich notifications are encrypted with the subscription's own certificate the way Graph does it
(random AES key, AES-CBC with the key's first 16 bytes as IV, HMAC-SHA256 signature, the key
wrapped with RSA-OAEP SHA-1), and each delivery carries validationTokens signed by graphsim's key,
whose JWKS is served at ``GET /_sim/jwks``.
https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jwt.algorithms import RSAAlgorithm

GRAPH_NOTIFICATION_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
SIM_TENANT_ID = "5f1d9a3c-0000-4000-8000-00000000a11c"
SIM_KEY_ID = "graphsim-signing-1"


def encrypt_content(content: dict[str, Any], certificate_b64: str, certificate_id: str) -> dict[str, Any]:
    """An `encryptedContent` object for `content`, for the holder of the certificate's private key."""
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate must hold an RSA key")
    key = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(content).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = encryptor.update(plain) + encryptor.finalize()
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode(),
        "dataKey": base64.b64encode(public.encrypt(key, oaep)).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),
    }


class SubscriptionStore:
    """Subscriptions by id plus the signing key; thread-safe like SimState."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, dict[str, Any]] = {}
        self._signing_key: rsa.RSAPrivateKey | None = None
        self.offset_s = 0.0
        self.app_id = "graphworks-test-client"  # the `aud` of validation tokens: the subscriber's client id
        self.tenant_id = SIM_TENANT_ID

    def reset(self) -> None:
        with self._lock:
            self._subs.clear()
            self.offset_s = 0.0
            self.app_id = "graphworks-test-client"
            self.tenant_id = SIM_TENANT_ID

    def now(self) -> float:
        """graphsim's clock for subscriptions; `advance` moves it so expiry is tested without waiting."""
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset_s += seconds

    def add(self, sub: dict[str, Any]) -> dict[str, Any]:
        sub = {**sub, "id": str(uuid.uuid4())}
        with self._lock:
            self._subs[sub["id"]] = sub
        return copy.deepcopy(sub)

    def get(self, sub_id: str, *, include_expired: bool = False) -> dict[str, Any] | None:
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is None or (not include_expired and sub["_expires_at"] <= self.now()):
                return None
            return copy.deepcopy(sub)

    def update(self, sub_id: str, **fields: Any) -> dict[str, Any] | None:
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is None:
                return None
            sub.update(fields)
            return copy.deepcopy(sub)

    def remove(self, sub_id: str) -> bool:
        with self._lock:
            return self._subs.pop(sub_id, None) is not None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._subs)

    def all(self) -> list[dict[str, Any]]:
        """Live (unexpired) subscriptions."""
        now = self.now()
        with self._lock:
            return [copy.deepcopy(s) for s in self._subs.values() if s["_expires_at"] > now]

    # -- validation tokens -------------------------------------------------------------------

    def signing_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._signing_key

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.signing_key().public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": SIM_KEY_ID, "use": "sig", "alg": "RS256"}]}

    def validation_token(self, *, expired: bool = False, audience: str | None = None) -> str:
        now = int(time.time())  # real time: the receiver checks `exp` against its own clock
        exp = now - 3600 if expired else now + 3600
        claims = {
            "aud": audience or self.app_id,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": exp - 7200 if expired else now,
            "nbf": exp - 7200 if expired else now,
            "exp": exp,
            "appid": GRAPH_NOTIFICATION_APP_ID,
            "azp": GRAPH_NOTIFICATION_APP_ID,
            "tid": self.tenant_id,
        }
        pem = self.signing_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": SIM_KEY_ID})
