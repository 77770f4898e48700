"""Decrypting a rich notification's `encryptedContent`, exactly as Graph documents it.

https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data#decrypting-resource-data-from-change-notifications
1. `dataKey` (base64) is the symmetric key encrypted with our certificate's public key, RSA-OAEP
   with SHA-1 (OAEP padding, as Graph uses).
2. `dataSignature` (base64) is HMAC-SHA256 of the `data` bytes (after base64 decoding) with the
   symmetric key: verify it first, and do not decrypt what fails.
3. `data` (base64) is AES-CBC with PKCS7 padding; the IV is the first 16 bytes of the key.

The private key is picked by `encryptionCertificateId`, from a PEM file or a directory of
`<certificate id>.pem` files (each a private key plus its certificate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OAEP_SHA1 = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class DecryptError(Exception):
    """The content cannot be trusted or read; `reason` is a counter name (never the content)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class EncryptionKey:
    """One certificate id's private key and certificate."""

    certificate_id: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate | None

    def certificate_base64(self) -> str:
        """What a subscription's `encryptionCertificate` carries: the DER certificate, base64."""
        if self.certificate is None:
            raise ValueError(f"{self.certificate_id}: the PEM holds no certificate")
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()


def load_pem(path: Path, certificate_id: str | None = None) -> EncryptionKey:
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    try:
        cert: x509.Certificate | None = x509.load_pem_x509_certificate(data)
    except ValueError:
        cert = None
    return EncryptionKey(certificate_id or path.stem, key, cert)


class KeyStore:
    """Private keys by certificate id."""

    def __init__(self, keys: dict[str, EncryptionKey] | None = None, default_id: str | None = None) -> None:
        self.keys = dict(keys or {})
        self.default_id = default_id or (sorted(self.keys)[0] if self.keys else None)

    @classmethod
    def from_path(cls, path: Path | None, default_id: str | None = None) -> KeyStore:
        if path is None:
            return cls()
        if path.is_dir():
            found = {p.stem: load_pem(p) for p in sorted(path.glob("*.pem"))}
        else:
            key = load_pem(path, default_id)
            found = {key.certificate_id: key}
        return cls(found, default_id)

    def get(self, certificate_id: str | None) -> EncryptionKey | None:
        return self.keys.get(certificate_id) if certificate_id else None

    def default(self) -> EncryptionKey | None:
        return self.get(self.default_id)


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise DecryptError("dropped_decrypt", f"encryptedContent.{name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError("dropped_decrypt", f"encryptedContent.{name} is not base64") from exc


def decrypt_content(encrypted: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    """The resource data as a JSON object, or DecryptError (signature first, then decryption)."""
    key = keys.get(encrypted.get("encryptionCertificateId"))
    if key is None:
        raise DecryptError("dropped_decrypt", "no private key for this encryptionCertificateId")
    data = _b64(encrypted.get("data"), "data")
    signature = _b64(encrypted.get("dataSignature"), "dataSignature")
    try:
        symmetric = key.private_key.decrypt(_b64(encrypted.get("dataKey"), "dataKey"), OAEP_SHA1)
    except ValueError as exc:
        raise DecryptError("dropped_decrypt", "dataKey does not decrypt with our key") from exc
    expected = hmac.new(symmetric, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise DecryptError("dropped_data_signature", "dataSignature does not match the data")
    if len(symmetric) not in (16, 24, 32) or len(data) % 16:
        raise DecryptError("dropped_decrypt", "bad key or data length")
    decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()
        content = json.loads(plain)
    except (ValueError, InvalidSignature) as exc:
        raise DecryptError("dropped_decrypt", "data does not decrypt to JSON") from exc
    if not isinstance(content, dict):
        raise DecryptError("dropped_decrypt", "data is not a JSON object")
    return content
