"""OPC-UA security: policies by name, the server trust list, and certificate generation.

The client checks the server's application instance certificate against a trust list
(OPC 10000-4 clause 6.1.3: the certificate must be trusted before a session is created):
a directory of DER or PEM certificates the operator put there. A server whose
certificate is not in it is refused with ``UntrustedServerError`` naming the certificate's
SHA-256 thumbprint, unless the operator trusts servers explicitly (``trust_server``).
"""

from __future__ import annotations

__all__ = [
    "POLICIES",
    "TrustList",
    "UntrustedServerError",
    "ensure_certificate",
    "thumbprint",
]

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.crypto import security_policies as sp
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgepipe.core import TransportError

#: Security policies by the names operators write (OPC 10000-7 security profiles).
#: Basic128Rsa15 and Basic256 are deprecated by the OPC Foundation and left out on purpose.
POLICIES: dict[str, type[sp.SecurityPolicy]] = {
    "Basic256Sha256": sp.SecurityPolicyBasic256Sha256,
    "Aes128Sha256RsaOaep": sp.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256Sha256RsaPss": sp.SecurityPolicyAes256Sha256RsaPss,
}

#: (policy, mode) -> the server-side endpoint type, for the simulator.
SERVER_POLICY: dict[tuple[str, str], ua.SecurityPolicyType] = {
    (p, m): getattr(ua.SecurityPolicyType, f"{p}_{m}")
    for p in POLICIES
    for m in ("Sign", "SignAndEncrypt")
}


class UntrustedServerError(TransportError):
    """The server's certificate is not in the trust list."""


def thumbprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _load(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


class TrustList:
    """The certificates in ``directory`` (``*.der``, ``*.pem``, ``*.crt``)."""

    def __init__(self, directory: str | None, trust_any: bool = False) -> None:
        self.directory = directory
        self.trust_any = trust_any
        self.thumbprints: set[str] = set()
        if directory:
            for p in sorted(Path(directory).glob("*")):
                if p.suffix.lower() in (".der", ".pem", ".crt"):
                    self.thumbprints.add(thumbprint(_load(p)))

    async def validate(self, cert: x509.Certificate, _app: Any) -> None:
        """asyncua's ``certificate_validator`` hook: raise when not trusted."""
        tp = thumbprint(cert)
        if self.trust_any or tp in self.thumbprints:
            return
        where = self.directory or "(no trust_dir configured)"
        raise UntrustedServerError(
            f"untrusted server certificate {cert.subject.rfc4514_string()} "
            f"(sha256 {tp}): copy it into {where} or set trust_server = true"
        )


async def ensure_certificate(
    directory: Path, name: str, app_uri: str, server: bool
) -> tuple[Path, Path]:
    """A self-signed application certificate (DER) and key (PEM) in ``directory``,
    created if missing; returns (certificate, key)."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    cert, key = directory / f"{name}.der", directory / f"{name}.pem"
    use = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    await setup_self_signed_certificate(
        key, cert, app_uri, "localhost", [use], {"commonName": name}
    )
    return cert, key
