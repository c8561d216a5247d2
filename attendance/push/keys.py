"""VAPID keys (RFC 8292): one P-256 pair for the application server. The private key is kept
as its raw 32 bytes in base64url (what pywebpush takes); the public key, 65 bytes
uncompressed in base64url, is what a page passes to `pushManager.subscribe`."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key_from(text: str) -> ec.EllipticCurvePrivateKey:
    """The key from its base64url raw form; ValueError if it is not a P-256 private key."""
    raw = b64u_decode(text.strip())
    if len(raw) != 32:
        raise ValueError("A VAPID private key is 32 bytes, in base64url (43 characters).")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_of(private: ec.EllipticCurvePrivateKey) -> str:
    return b64u(
        private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def new_key_pair() -> tuple[str, str]:
    """(private, public), both base64url: a new application server key."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    return b64u(raw), public_key_of(private)
