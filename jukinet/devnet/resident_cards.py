"""Residents' My Number cards in a provisioned network, for tests and demos.

:func:`set_up_resident_card` is the counter's flow against a running CS: a blank card, its keys generated
in it, ``SetUpCard`` at the CS (which has the card CA certify them and records card → holder), the
certificates written to the card, then ``ISSUE`` (交付): the CS's ``holder_of`` then knows the card and it
may be presented. :func:`issue_resident_card` makes a card without any CS (for unit tests), with the card
CA of the network's PKI directly: a blank card (its own SoftHSM token in the network's SoftHSM, the card reader of this
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
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jukinet.clients import TerminalClient
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
from jukinet.v1 import cards_pb2, identity_pb2

__all__ = ["ResidentCardKit", "issue_resident_card", "resident_card_dir", "set_up_resident_card"]


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


def _save(network: Network, serial: str, label: str, so_pin: str, resident_code: str) -> None:
    """The municipality keeps the card's SO PIN (to unlock it), its label and its holder."""
    directory = resident_card_dir(network, serial)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / "so.pin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(so_pin + "\n")
    (directory / "card.label").write_text(label + "\n")
    (directory / "holder").write_text(resident_code + "\n")


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
    _save(network, serial, label, so_pin, holder.resident_code)
    return ResidentCardKit(label, serial, pin, so_pin, holder.resident_code, auth, sign)


def set_up_resident_card(
    worker: TokenWorker,
    network: Network,
    terminal: TerminalClient,
    holder: identity_pb2.IdentityRecord,
    pin: str,
    label: str | None = None,
    issue: bool = True,
) -> ResidentCardKit:
    """The card of ``holder`` set up (and, with ``issue``, handed over) at their CS through ``terminal``
    (the CS's site terminal with an operator holding manage-cards logged in)."""
    if not 4 <= len(pin) <= 255:
        raise Rejected(Problem.INVALID, f"a card PIN has 4 to 255 characters, got {len(pin)}")
    label = label or f"rcard-{network.network_id}-{secrets.token_hex(4)}"
    so_pin = secrets.token_hex(8)
    create_resident_card(worker, label, pin, so_pin)
    serial = resident_card_serial(worker, label)
    auth_pub, sign_pub = generate_resident_card_keys(worker, label, pin)
    der = [k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) for k in (auth_pub, sign_pub)]
    card = terminal.set_up_card(holder.resident_code, serial, der[0], der[1])
    auth = x509.load_der_x509_certificate(card.auth_certificate)
    sign = x509.load_der_x509_certificate(card.signature_certificate)
    store_resident_card_certificates(worker, label, pin, auth, sign)
    if issue:
        terminal.change_card_state(serial, cards_pb2.CARD_ACTION_ISSUE)
    _save(network, serial, label, so_pin, holder.resident_code)
    return ResidentCardKit(label, serial, pin, so_pin, holder.resident_code, auth, sign)
