"""Residents' My Number cards in a provisioned network, for tests and demos.

:func:`issue_resident_card` does what issuance does (交付前設定), with the card CA of the network's PKI
directly: a blank card (its own SoftHSM token in the network's SoftHSM, the card reader of this
process's token worker), its two keys generated inside it, the card CA's authentication and signature
certificates (the latter with the holder's card face) stored on it. The card's SO PIN stays with the
municipality (``state/resident-cards/<serial>/so.pin``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from jukinet.devnet.provision import Network
from jukinet.domain.cards import card_face_of
from jukinet.domain.errors import Problem, Rejected
from jukinet.hsm import TokenWorker
from jukinet.hsm.resident_card import (
    ResidentCard,
    create_resident_card,
    generate_resident_card_keys,
    resident_card_serial,
    store_resident_card_certificates,
)
from jukinet.pki import issue_card_auth_certificate, issue_card_signature_certificate
from jukinet.v1 import identity_pb2

__all__ = ["ResidentCardKit", "issue_resident_card", "resident_card_dir"]


@dataclass(frozen=True)
class ResidentCardKit:
    """A resident's card as the harness knows it: where it is, its PIN, whose it is, its certificates."""

    label: str
    card_serial: str
    pin: str
    so_pin: str
    resident_code: str
    auth_certificate: x509.Certificate
    signature_certificate: x509.Certificate

    def card(self, worker: TokenWorker) -> ResidentCard:
        return ResidentCard(worker, self.label)


def resident_card_dir(net: Network, card_serial: str) -> Path:
    return net.state / "resident-cards" / card_serial


def issue_resident_card(
    worker: TokenWorker,
    network: Network,
    label: str | None,
    pin: str,
    holder: identity_pb2.IdentityRecord,
) -> ResidentCardKit:
    """A new card for ``holder`` (token, two keys, two certificates from the card CA); ``label`` None: a
    fresh one unique across networks sharing a SoftHSM. Registering it at the CS is a separate step."""
    if not 4 <= len(pin) <= 255:
        raise Rejected(Problem.INVALID, f"a card PIN has 4 to 255 characters, got {len(pin)}")
    label = label or f"rcard-{network.network_id}-{secrets.token_hex(4)}"
    so_pin = secrets.token_hex(8)
    create_resident_card(worker, label, pin, so_pin)
    serial = resident_card_serial(worker, label)
    auth_pub, sign_pub = generate_resident_card_keys(worker, label, pin)
    auth = issue_card_auth_certificate(network.pki_dir, serial, auth_pub)
    sign = issue_card_signature_certificate(network.pki_dir, serial, sign_pub, card_face_of(holder))
    store_resident_card_certificates(worker, label, pin, auth, sign)
    directory = resident_card_dir(network, serial)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / "so.pin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(so_pin + "\n")
    (directory / "card.label").write_text(label + "\n")
    (directory / "holder").write_text(holder.resident_code + "\n")
    return ResidentCardKit(label, serial, pin, so_pin, holder.resident_code, auth, sign)
