"""Stand-ins shared by the login unit tests (no token, no gRPC): the node's template key and a card."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet.biometrics import SyntheticSubject
from jukinet.pki import SoftwareSigner


class SoftwareAesGcm:
    """Stands in for the node token's template key (unit tests only)."""

    def __init__(self) -> None:
        self._key = AESGCM(AESGCM.generate_key(256))

    def encrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        return self._key.encrypt(nonce, data, aad)

    def decrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        return self._key.decrypt(nonce, data, aad)


@dataclass
class Card:
    """An operator's card: its key, the certificate naming the operator, and the person holding it."""

    operator_id: str
    signer: SoftwareSigner
    certificate_der: bytes
    subject: SyntheticSubject
