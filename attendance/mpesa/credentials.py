"""The SecurityCredential of B2C, Transaction Status and Account Balance.

The initiator's password as plain bytes, RSA-encrypted with the public key of Safaricom's
certificate for the environment (PKCS#1 v1.5, not OAEP), base64-encoded. The padding is
random, so the credential differs on every call; one may be reused for many requests. Neither
the password nor the credential is ever logged.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


class CredentialError(ValueError):
    """The certificate cannot be read or its key cannot encrypt."""


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate as PEM (the portal's download opened in a text editor) or DER (`.cer`)."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise CredentialError("The M-Pesa certificate is not a PEM or DER certificate.") from error


def security_credential(password: str, certificate: bytes) -> str:
    public_key = load_certificate(certificate).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CredentialError("The M-Pesa certificate does not hold an RSA key.")
    encrypted = public_key.encrypt(password.encode(), padding.PKCS1v15())
    return base64.b64encode(encrypted).decode()


def decrypt_credential(credential: str, private_key: rsa.RSAPrivateKey) -> str:
    """What the simulator (standing in for Safaricom) does with a credential."""
    return private_key.decrypt(base64.b64decode(credential), padding.PKCS1v15()).decode()


def self_signed_certificate(
    common_name: str = "Daraja simulator",
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A key pair and its certificate (PEM), for the simulator, the demo and tests: the
    Safaricom certificates are never downloaded here."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(tz=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key
