"""``jukinet operator …`` and ``jukinet audit verify``: what an administrator runs at a node's site."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from cryptography import x509

from jukinet.cli.pins import PinSource, distinct
from jukinet.clients import TerminalClient
from jukinet.devnet.access import terminal_for
from jukinet.devnet.operators import (
    OperatorKit,
    discard_card,
    enroll_operator,
    issue_card,
    load_operator,
    log_in,
    operator_dir,
    unlock_card,
)
from jukinet.devnet.provision import Network, load_network
from jukinet.domain.errors import Problem, Rejected
from jukinet.hsm import TokenWorker, find_softhsm_module
from jukinet.server.audit import check_tree_head
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, operator_pb2


def _card_reader(net: Network) -> TokenWorker:
    """This process's token worker: the terminal's card reader (cards are tokens of the network's SoftHSM)."""
    return TokenWorker(find_softhsm_module(), net.softhsm.conf_path)


def _operator_id(net: Network, node: str, name: str) -> str:
    return f"operator:{net.topology.node(node).site}:{name}"


def _terminal(net: Network, reader: TokenWorker, node: str, admin: str | None, admin_pin: PinSource) -> TerminalClient:
    """The node's site terminal, with the administrator logged in if one is named."""
    terminal = terminal_for(net, net.topology.node(node))
    if admin:
        kit = load_operator(net, _operator_id(net, node, admin), admin_pin.read(f"PIN of {admin}'s card: "))
        log_in(reader, terminal, kit, attempts=3)
    return terminal


def _describe(info: operator_pb2.OperatorInfo) -> str:
    status = operator_pb2.OperatorStatus.Name(info.status).removeprefix("OPERATOR_STATUS_").lower()
    return (
        f"{info.operator_id}: {status}, roles {', '.join(info.roles)}, "
        f"{info.consecutive_failures} consecutive failures, card serial {info.card_serial}"
    )


def enroll(state: Path, node: str, name: str, roles: list[str], pin: PinSource, admin: str | None,
           admin_pin: PinSource) -> int:  # fmt: skip
    if admin:
        distinct(pin, admin_pin)
    net = load_network(state)
    reader = _card_reader(net)
    try:
        operator_id = _operator_id(net, node, name)
        terminal = _terminal(net, reader, node, admin, admin_pin)
        new_pin = pin.read(f"new PIN for {operator_id}'s card: ")
        issued = not operator_dir(net, operator_id).exists()
        kit = issue_card(reader, net, operator_id, new_pin) if issued else load_operator(net, operator_id, new_pin)
        try:
            info = enroll_operator(reader, terminal, kit, roles)
        except BaseException:
            if issued:  # the node refused: leave no card behind
                discard_card(net, kit)
            raise
    finally:
        reader.close()
    print(f"enrolled {_describe(info)}")
    print(f"card: token '{kit.card_label}' (SO PIN kept in {operator_dir(net, operator_id) / 'so.pin'})")
    return 0


def login(state: Path, node: str, name: str, pin: PinSource) -> int:
    net = load_network(state)
    operator_id = _operator_id(net, node, name)
    kit: OperatorKit = load_operator(net, operator_id, pin.read(f"PIN of {operator_id}'s card: "))
    terminal = terminal_for(net, net.topology.node(node))
    reader = _card_reader(net)
    try:
        claims = log_in(reader, terminal, kit, attempts=3)
    finally:
        reader.close()
    session_file = _session_file(net, node)
    fd = os.open(session_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(terminal.session.SerializeToString())  # type: ignore[union-attr]
    expires = claims.expires_at.ToDatetime().strftime("%H:%M:%S UTC")
    print(f"logged in {claims.operator_id} at {claims.node_id} with roles {', '.join(claims.roles)}; "
          f"session until {expires}, bound to this terminal ({session_file})")  # fmt: skip
    return 0


def _session_file(net: Network, node: str) -> Path:
    return net.terminal(net.topology.node(node).site).cert.parent / "session.bin"


def session_terminal(net: Network, node: str) -> TerminalClient:
    """The node's site terminal with the session `jukinet operator login` left there."""
    session_file = _session_file(net, node)
    if not session_file.exists():
        raise Rejected(
            Problem.UNAUTHENTICATED, f"no session is open at {node}'s terminal: jukinet operator login first"
        )
    terminal = terminal_for(net, net.topology.node(node))
    terminal.session = envelope_pb2.Signed.FromString(session_file.read_bytes())
    return terminal


def logout(state: Path, node: str) -> int:
    """End the session `jukinet operator login` left at the node's site terminal."""
    net = load_network(state)
    session_file = _session_file(net, node)
    if not session_file.exists():
        print(f"no session is open at {node}'s terminal")
        return 1
    terminal = session_terminal(net, node)
    try:
        terminal.logout()
    except grpc.RpcError as exc:
        print(f"the node no longer honours the session ({exc.code().name}: {exc.details()}); removing it")
    session_file.unlink()
    print(f"logged out at {node}")
    return 0


def unlock(state: Path, node: str, name: str, admin: str, admin_pin: PinSource) -> int:
    net = load_network(state)
    operator_id = _operator_id(net, node, name)
    reader = _card_reader(net)
    try:
        terminal = _terminal(net, reader, node, admin, admin_pin)
        info = terminal.unlock_operator(operator_id)
        if operator_dir(net, operator_id).exists():  # the card's own PIN counter, reset with the SO PIN
            unlock_card(reader, load_operator(net, operator_id, ""))
    finally:
        reader.close()
    print(f"unlocked {_describe(info)}")
    return 0


def show(state: Path, node: str, name: str, admin: str, admin_pin: PinSource) -> int:
    net = load_network(state)
    reader = _card_reader(net)
    try:
        info = _terminal(net, reader, node, admin, admin_pin).operator(_operator_id(net, node, name))
    except grpc.RpcError as exc:
        print(f"refused: {exc.code().name}: {exc.details()}")
        return 2
    finally:
        reader.close()
    print(_describe(info))
    return 0


def attempts(state: Path, node: str, name: str | None, admin: str, admin_pin: PinSource) -> int:
    """Administrator: who is failing to log in as whom from which terminal, and logins in progress."""
    net = load_network(state)
    reader = _card_reader(net)
    try:
        terminal = _terminal(net, reader, node, admin, admin_pin)
        listed = terminal.login_attempts(_operator_id(net, node, name) if name else "")
    except grpc.RpcError as exc:
        print(f"refused: {exc.code().name}: {exc.details()}")
        return 2
    finally:
        reader.close()
    print(f"logins in progress: {listed.pending_total} (at most {listed.pending_limit}, "
          f"{listed.pending_per_terminal_limit} per terminal)")  # fmt: skip
    for pending in listed.pending:
        print(f"  {pending.terminal}: {pending.pending}")
    if not listed.attempts:
        print("no terminal is backing off from any operator")
    for a in listed.attempts:
        retry = a.retry_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{a.operator_id} from {a.terminal}: {a.failures} failures without the card, "
              f"may retry at {retry}; last: {a.last_reason}")  # fmt: skip
    if listed.omitted:
        print(f"({listed.omitted} older entries not shown)")
    return 0


def verify_audit(state: Path, node: str) -> int:
    """Check a node's audit log end to end from its LMDB files (the node may be running)."""
    net = load_network(state)
    spec = net.topology.node(node)
    node_dir = net.node_dir(spec)
    certificate = x509.load_pem_x509_certificate((node_dir / "signing.pem").read_bytes())
    node_id = str(spec.node_id)

    def check_head(tree_size: int, sth_bytes: bytes, root: bytes) -> str | None:
        try:
            head = check_tree_head(envelope_pb2.Signed.FromString(sth_bytes), certificate, node_id)
        except Rejected as exc:
            return str(exc)
        if head.tree_size != tree_size:
            return f"signed head says size {head.tree_size}"
        if head.root_hash != root:
            return "signed root does not match the entries"
        return None

    store = NodeStorage.open(node_dir / "data", readonly=True)
    try:
        report = store.audit.verify(check_head)
    finally:
        store.close()
    print(f"{node_id}: {report}")
    return 0 if report.ok else 1
