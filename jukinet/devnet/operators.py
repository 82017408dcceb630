"""Operators of a provisioned network: their IC cards, their (emulated) bodies, enrollment and login.

What an administrator does at enrollment, in development: create the operator's card as its own
SoftHSM token with the operator's PIN, generate the card key inside it, have the operator CA issue
the operator certificate for that key and store it on the card, capture the operator's biometric
template, and enroll the operator (certificate, roles, template) at the node.

Biometrics are emulated: each operator is a synthetic subject (``jukinet.biometrics.emulation``)
kept in ``state/operators/<site>-<name>/subject.bin``, standing in for the person in front of the
sensor; every capture adds fresh, realistic noise. The card's SO PIN stays with the administrator
(``so.pin`` there). Cards are used through this process's token worker (the terminal's card reader),
whose SoftHSM configuration must be the network's.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from jukinet.biometrics import SyntheticSubject, enroll
from jukinet.clients import TerminalClient
from jukinet.devnet.access import terminal_for
from jukinet.devnet.provision import Network
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.hsm import TokenWorker
from jukinet.hsm.card import OperatorCard, admin_unlock, create_card, generate_card_key, store_card_certificate
from jukinet.pki import issue_signing_certificate
from jukinet.v1 import operator_pb2

SEED_ENV = "JUKINET_BIOMETRIC_SEED"


def sensor_rng(salt: str) -> np.random.Generator:
    """Randomness of the emulated sensor and bodies: fresh by default; reproducible (per ``salt``, e.g.
    the operator id) when $JUKINET_BIOMETRIC_SEED is set, as test runs do so that a rare false
    non-match cannot make a run flaky."""
    seed = os.environ.get(SEED_ENV)
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "big")])


@dataclass(frozen=True)
class OperatorKit:
    """An operator as the test harness or demo knows them: card label, PIN, and their body."""

    operator_id: str
    card_label: str
    pin: str
    so_pin: str
    subject: SyntheticSubject

    def card(self, worker: TokenWorker) -> OperatorCard:
        return OperatorCard(worker, self.card_label)


def operator_dir(net: Network, operator_id: str) -> Path:
    parsed = NodeId.parse(operator_id)
    return net.state / "operators" / f"{parsed.site}-{parsed.name}"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def issue_card(
    worker: TokenWorker, net: Network, operator_id: str, pin: str, rng: np.random.Generator | None = None
) -> OperatorKit:
    """Create the operator's card (token, key, certificate) and their synthetic body; saved under state."""
    if not 4 <= len(pin) <= 255:
        raise Rejected(Problem.INVALID, f"a card PIN has 4 to 255 characters, got {len(pin)}")
    rng = rng or sensor_rng(operator_id)
    digest = hashlib.sha256(operator_id.encode()).hexdigest()[:12]
    label = f"card-{net.network_id}-{digest}"  # ≤ 32 bytes, unique across networks sharing a SoftHSM
    directory = operator_dir(net, operator_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    so_pin = secrets.token_hex(8)
    create_card(worker, label, pin, so_pin)
    public_key = generate_card_key(worker, label, pin)
    certificate = issue_signing_certificate(net.pki_dir, "operator", [operator_id], public_key)
    store_card_certificate(worker, label, pin, certificate)
    subject = SyntheticSubject.create(rng)
    _write_secret(directory / "so.pin", so_pin.encode())
    _write_secret(directory / "subject.bin", subject.to_bytes())
    (directory / "card.label").write_text(label)
    return OperatorKit(operator_id, label, pin, so_pin, subject)


def discard_card(net: Network, kit: OperatorKit) -> None:
    """Undo :func:`issue_card` (its enrollment failed): delete the card token and the operator's files."""
    net.softhsm.delete_token(kit.card_label)
    directory = operator_dir(net, kit.operator_id)
    for name in ("so.pin", "subject.bin", "card.label"):
        (directory / name).unlink(missing_ok=True)
    directory.rmdir()


def load_operator(net: Network, operator_id: str, pin: str) -> OperatorKit:
    directory = operator_dir(net, operator_id)
    if not directory.exists():
        raise Rejected(Problem.NOT_FOUND, f"no card was issued for {operator_id} in {net.state}")
    return OperatorKit(
        operator_id,
        (directory / "card.label").read_text().strip(),
        pin,
        (directory / "so.pin").read_text().strip(),
        SyntheticSubject.from_bytes((directory / "subject.bin").read_bytes()),
    )


def enroll_operator(
    worker: TokenWorker,
    terminal: TerminalClient,
    kit: OperatorKit,
    roles: list[str],
    rng: np.random.Generator | None = None,
) -> operator_pb2.OperatorInfo:
    """Enroll at the node the terminal is connected to (as bootstrap, or with an administrator session)."""
    rng = rng or sensor_rng(f"enroll:{kit.operator_id}")
    with kit.card(worker).unlock(kit.pin) as card:
        certificate = card.certificate_der
    return terminal.enroll_operator(kit.operator_id, certificate, roles, enroll(kit.subject, rng))


def log_in(
    worker: TokenWorker,
    terminal: TerminalClient,
    kit: OperatorKit,
    pin: str | None = None,
    rng: np.random.Generator | None = None,
    attempts: int = 1,
) -> operator_pb2.SessionClaims:
    """PIN unlocks the card, the card signs the node's challenge, the sensor captures a sample.

    With ``attempts`` > 1 the operator presents again after a biometric mismatch, as at a real
    terminal (genuine captures fail to match about 0.3 % of the time); each miss counts at the node.
    """
    rng = rng or sensor_rng(f"login:{kit.operator_id}")
    with kit.card(worker).unlock(kit.pin if pin is None else pin) as card:
        for attempt in range(1, attempts + 1):
            try:
                return terminal.login(kit.operator_id, card, kit.subject.capture(rng))
            except grpc.RpcError as exc:
                if attempt == attempts or "biometric sample does not match" not in (exc.details() or ""):
                    raise
    raise AssertionError("unreachable")


def unlock_card(worker: TokenWorker, kit: OperatorKit) -> None:
    """Administrator: reset the card's PIN failure count with its SO PIN."""
    admin_unlock(worker, kit.card_label, kit.so_pin)


def site_operator_id(net: Network, node_id: str, name: str = "admin") -> str:
    return f"operator:{net.topology.node(node_id).site}:{name}"


def bootstrap_operators(
    worker: TokenWorker,
    net: Network,
    pin: str = "123456",
    roles: list[str] | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, tuple[OperatorKit, TerminalClient]]:
    """For each node: issue an administrator's card, enroll them (the node's first operator, so the site's
    terminal certificate suffices) and log them in at the site's terminal. By node id (first id)."""
    roles = roles or [r.value for r in Role]
    out = {}
    for spec in net.topology.nodes:
        operator_id = f"operator:{spec.site}:admin"
        directory = operator_dir(net, operator_id)
        if directory.exists():
            kit = load_operator(net, operator_id, pin)
        else:
            kit = issue_card(worker, net, operator_id, pin, rng)
        terminal = terminal_for(net, spec)
        try:
            enroll_operator(worker, terminal, kit, roles, rng)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        log_in(worker, terminal, kit, rng=rng, attempts=3)
        out[str(spec.node_id)] = (kit, terminal)
    return out
