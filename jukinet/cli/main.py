"""The ``jukinet`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

DEFAULT_STATE = Path("state/up")


def _topology(args: argparse.Namespace):  # -> Topology (imported lazily: `node run` must not load it)
    from jukinet.devnet.topology import Topology

    return Topology.load(args.topology) if args.topology else Topology.default()


def cmd_pki_init(args: argparse.Namespace) -> int:
    from jukinet.pki import init_pki

    init_pki(args.state / "pki")
    print(f"PKI ready in {args.state / 'pki'} (root CA, node/operator/agency issuing CAs, CRLs)")
    return 0


def cmd_network_init(args: argparse.Namespace) -> int:
    from jukinet.devnet.provision import provision

    net = provision(args.state, _topology(args))
    for spec in net.topology.nodes:
        print(f"{spec.name:>12}  {spec.listen}  {net.node_config(spec)}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from jukinet.devnet.provision import provision
    from jukinet.devnet.supervisor import Supervisor, start_network

    net = provision(args.state, _topology(args))
    print(f"state directory: {net.state}")
    running = start_network(net)
    for spec in net.topology.nodes:
        print(f"  {spec.name:>12} listening on {spec.listen} (log: {net.state / 'logs' / (spec.name + '.log')})")
    print("network is up; a node that exits is restarted; Ctrl-C stops every node", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    supervisor = Supervisor(running, say=lambda line: print(line, flush=True))
    try:
        while not stop.wait(0.5):
            supervisor.check()
    finally:
        running.stop()
        print("stopped", flush=True)
    return 0


def cmd_node_run(args: argparse.Namespace) -> int:
    from jukinet.server.daemon import run_node

    return run_node(args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from jukinet.cli.demo import run_demo

    return run_demo(args.state, pause=args.pause)


def cmd_status(args: argparse.Namespace) -> int:
    from jukinet.cli.views import print_status

    return print_status(args.state)


def cmd_lookup(args: argparse.Namespace) -> int:
    from jukinet.cli.views import lookup

    return lookup(args.state, args.agency, args.business, args.resident_code, args.my_number, args.agency_identifier)


def cmd_operator(args: argparse.Namespace) -> int:
    from jukinet.cli import operators
    from jukinet.cli.pins import ADMIN_PIN_ENV, PIN_ENV, PinSource

    pin = PinSource("--pin-fd", getattr(args, "pin_fd", None), PIN_ENV)
    admin_pin = PinSource("--admin-pin-fd", getattr(args, "admin_pin_fd", None), ADMIN_PIN_ENV)
    if args.op_cmd == "enroll":
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        return operators.enroll(args.state, args.node, args.name, roles, pin, args.admin, admin_pin)
    if args.op_cmd == "login":
        return operators.login(args.state, args.node, args.name, pin)
    if args.op_cmd == "logout":
        return operators.logout(args.state, args.node)
    if args.op_cmd == "attempts":
        return operators.attempts(args.state, args.node, args.name, args.admin, admin_pin)
    if args.op_cmd == "unlock":
        return operators.unlock(args.state, args.node, args.name, args.admin, admin_pin)
    return operators.show(args.state, args.node, args.name, args.admin, admin_pin)


def cmd_quarantine(args: argparse.Namespace) -> int:
    from jukinet.cli import outbox

    if args.quarantine_cmd == "list":
        return outbox.quarantine_list(args.state, args.node, args.destination)
    act = outbox.quarantine_retry if args.quarantine_cmd == "retry" else outbox.quarantine_drop
    return act(args.state, args.node, args.destination, args.position)


def cmd_residents(args: argparse.Namespace) -> int:
    from jukinet.cli import residents

    if args.res_cmd == "import":
        return residents.import_residents(args.state, args.node, args.file, args.format, assigned=args.assigned)
    return residents.show_resident(args.state, args.node, args.resident_code)


def cmd_directory(args: argparse.Namespace) -> int:
    from jukinet.cli import directory

    if args.dir_cmd == "show":
        return directory.show(args.state, args.node, args.from_store)
    return directory.publish(args.state, args.file, args.validity_s)


def cmd_stats(args: argparse.Namespace) -> int:
    from jukinet.cli import stats

    return stats.movements(args.state, args.node, args.month, args.csv, args.png)


def cmd_copies(args: argparse.Namespace) -> int:
    from jukinet.cli import copies
    from jukinet.cli.pins import PIN_ENV, PinSource

    if args.copies_cmd == "request":
        pin = PinSource("--pin-fd", args.pin_fd, PIN_ENV)
        return copies.request_copy(args.state, args.node, args.home, args.card, pin, args.resident_code,
                                   args.with_resident_code, args.with_my_number)  # fmt: skip
    if args.copies_cmd == "issuances":
        return copies.list_issuances(args.state, args.node, args.resident_code)
    if args.copies_cmd == "dv-register":
        return copies.register_measure(args.state, args.node, args.resident_code, args.municipality)
    if args.copies_cmd == "dv-list":
        return copies.list_measures(args.state, args.node, args.resident_code)
    return copies.remove_measure(args.state, args.node, args.resident_code, args.measure)


def cmd_disclosure(args: argparse.Namespace) -> int:
    from jukinet.cli import disclosure
    from jukinet.cli.pins import PIN_ENV, PinSource

    if args.disclosure_cmd == "mine":
        pin = PinSource("--pin-fd", args.pin_fd, PIN_ENV)
        return disclosure.mine(args.state, args.node, args.card, args.resident, pin, args.seen)
    return disclosure.counter(args.state, args.node, args.resident, args.copies, args.seen)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from jukinet.cli.operators import verify_audit

    return verify_audit(args.state, args.node)


def build_parser() -> argparse.ArgumentParser:
    from jukinet.cli.pins import ADMIN_PIN_ENV, PIN_ENV, add_pin_options

    parser = argparse.ArgumentParser(
        prog="jukinet",
        description="JukiNet: a three-tier resident-identity network (CS → prefecture → national).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_state(p: argparse.ArgumentParser, default: Path = DEFAULT_STATE) -> None:
        p.add_argument("--state", type=Path, default=default, help=f"state directory (default: {default})")

    def with_topology(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topology", type=Path, help="topology file (default: the bundled demo network)")

    pki = sub.add_parser("pki", help="development PKI").add_subparsers(dest="pki_command", required=True)
    p = pki.add_parser("init", help="create root CA, issuing CAs (node, operator, agency) and CRLs")
    with_state(p)
    p.set_defaults(func=cmd_pki_init)

    network = sub.add_parser("network", help="provision a network").add_subparsers(dest="net_cmd", required=True)
    p = network.add_parser("init", help="PKI, SoftHSM tokens and keys, certificates and node configs")
    with_state(p)
    with_topology(p)
    p.set_defaults(func=cmd_network_init)

    p = sub.add_parser("up", help="provision and run a network until Ctrl-C, restarting nodes that exit")
    with_state(p)
    with_topology(p)
    p.set_defaults(func=cmd_up)

    node = sub.add_parser("node", help="run one node").add_subparsers(dest="node_cmd", required=True)
    p = node.add_parser("run", help="run the node described by a node.toml until SIGTERM")
    p.add_argument("--config", type=Path, required=True)
    p.set_defaults(func=cmd_node_run)

    p = sub.add_parser("demo", help="start a network, play a short scenario, stop it")
    with_state(p, Path("state/demo"))
    p.add_argument("--pause", type=float, default=0.5, help="seconds to pause between steps (default 0.5)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="records, outbox and provisions of every node of a running network")
    with_state(p)
    p.set_defaults(func=cmd_status)

    operator = sub.add_parser("operator", help="operators: IC cards, enrollment, login, unlock")
    ops = operator.add_subparsers(dest="op_cmd", required=True)

    def with_operator(p: argparse.ArgumentParser, admin: bool) -> None:
        with_state(p)
        p.add_argument("--node", required=True, help="node id, e.g. cs:131148")
        p.add_argument("--name", required=True, help="operator name at the node's site, e.g. clerk-01")
        if admin:
            p.add_argument("--admin", help="name of the administrator who logs in to do this")
            add_pin_options(p, "--admin-pin", ADMIN_PIN_ENV, "the administrator's card")

    # PINs never come as arguments (readable by every local user): a descriptor, the environment, a prompt.
    p = ops.add_parser("enroll", help="issue the operator's IC card (a token), enroll card, roles and biometric")
    with_operator(p, admin=True)
    p.add_argument("--roles", required=True, help="comma-separated roles, e.g. register-residents")
    add_pin_options(p, "--pin", PIN_ENV, "the new card's")
    p.set_defaults(func=cmd_operator)
    p = ops.add_parser("login", help="PIN unlocks the card, the card signs the node's challenge, biometric match")
    with_operator(p, admin=False)
    add_pin_options(p, "--pin", PIN_ENV, "the operator's card")
    p.set_defaults(func=cmd_operator)
    p = ops.add_parser("logout", help="end the session `operator login` left at the node's site terminal")
    with_state(p)
    p.add_argument("--node", required=True, help="node id, e.g. cs:131148")
    p.set_defaults(func=cmd_operator)
    p = ops.add_parser("unlock", help="administrator: unlock a locked operator and reset their card")
    with_operator(p, admin=True)
    p.set_defaults(func=cmd_operator)
    p = ops.add_parser("show", help="administrator: an operator's roles, status and failure count")
    with_operator(p, admin=True)
    p.set_defaults(func=cmd_operator)
    p = ops.add_parser("attempts", help="administrator: failed logins per operator and terminal, logins in progress")
    with_state(p)
    p.add_argument("--node", required=True, help="node id, e.g. cs:131148")
    p.add_argument("--name", help="only this operator (name at the node's site)")
    p.add_argument("--admin", required=True, help="name of the administrator who logs in to do this")
    add_pin_options(p, "--admin-pin", ADMIN_PIN_ENV, "the administrator's card")
    p.set_defaults(func=cmd_operator)

    residents = sub.add_parser("residents", help="a CS's residents, with the session of `operator login`")
    res = residents.add_subparsers(dest="res_cmd", required=True)
    p = res.add_parser("import", help="register residents from a CSV or JSON Lines file (docs/IMPORT.md)")
    with_state(p)
    p.add_argument("--node", required=True, help="the CS, e.g. cs:131148")
    p.add_argument("--format", choices=("csv", "jsonl"), help="the file's format (default: from its name)")
    p.add_argument("file", type=Path, help="the file; re-run after an interruption: stored rows are skipped")
    p.add_argument("--assigned", type=Path, help="where to write the 住民票コード and My Number the CS gave each new "
                   "resident, by line (default: FILE.assigned.csv beside the file)")  # fmt: skip
    p.set_defaults(func=cmd_residents)
    p = res.add_parser("show", help="print one resident's record as the CS holds it")
    with_state(p)
    p.add_argument("--node", required=True, help="the CS, e.g. cs:131148")
    p.add_argument("resident_code", help="住民票コード, 11 digits")
    p.set_defaults(func=cmd_residents)

    audit = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(dest="audit_cmd", required=True)
    p = audit.add_parser("verify", help="check a node's audit log end to end; names the first entry that does not fit")
    with_state(p)
    p.add_argument("--node", required=True, help="node id, e.g. cs:131148")
    p.set_defaults(func=cmd_audit_verify)

    outbox = sub.add_parser("outbox", help="a node's outbound queues").add_subparsers(dest="outbox_cmd", required=True)
    quarantine = outbox.add_parser(
        "quarantine", help="items a destination refused for good (operator session with role manage-links)"
    ).add_subparsers(dest="quarantine_cmd", required=True)
    for name, helptext in (
        ("list", "list quarantined items with the destination's reason"),
        ("retry", "put items back at the tail of their queue (all of the destination's if no --position)"),
        ("drop", "give items up (all of the destination's if no --position); audited with their digests"),
    ):
        p = quarantine.add_parser(name, help=helptext)
        with_state(p)
        p.add_argument("--node", required=True, help="node id, e.g. cs:131148")
        p.add_argument("--destination", required=name != "list", default="", help="the link's destination")
        if name != "list":
            p.add_argument("--position", type=int, action="append", default=[], help="queue position (repeatable)")
        p.set_defaults(func=cmd_quarantine)

    directory = sub.add_parser("directory", help="the signed network directory").add_subparsers(
        dest="dir_cmd", required=True
    )
    p = directory.add_parser("show", help="print the network directory a node holds (verified against the PKI)")
    with_state(p)
    p.add_argument("--node", default="national", help="node id, e.g. cs:131148 (default: national)")
    p.add_argument("--from-store", action="store_true", help="read the node's store instead of asking it")
    p.set_defaults(func=cmd_directory)
    p = directory.add_parser(
        "publish", help="administrator at national: sign and serve the next version (the session of operator login)"
    )
    with_state(p)
    p.add_argument("--file", type=Path, help="directory content TOML (default: built from the provisioned network)")
    p.add_argument("--validity-s", type=int, default=0, help="seconds it is valid (default: the national's setting)")
    p.set_defaults(func=cmd_directory)

    copies = sub.add_parser(
        "copies", help="住民票の写しの広域交付 and DV support measures, with the session of `operator login`"
    ).add_subparsers(dest="copies_cmd", required=True)
    p = copies.add_parser("request", help="at a CS's counter: the resident's card, a copy from their home CS")
    with_state(p)
    p.add_argument("--node", required=True, help="the requesting CS (its operator needs issue-copies)")
    p.add_argument("--home", required=True, help="the resident's home CS, e.g. cs:131148")
    p.add_argument("--card", required=True, help="the resident card's serial (state/resident-cards/<serial>)")
    p.add_argument("--resident-code", default="", help="住民票コード (default: the card's holder)")
    p.add_argument("--with-resident-code", action="store_true", help="住民票コード expressly requested")
    p.add_argument("--with-my-number", action="store_true", help="個人番号 expressly requested")
    add_pin_options(p, "--pin", PIN_ENV, "the resident's card")
    p.set_defaults(func=cmd_copies)
    for name, helptext in (
        ("issuances", "copies issued of a resident: when and to which CS (role answer-disclosure)"),
        ("dv-register", "register a DV support measure (role manage-dv-measures)"),
        ("dv-list", "a resident's DV support measures"),
        ("dv-remove", "remove a DV support measure"),
    ):
        p = copies.add_parser(name, help=helptext)
        with_state(p)
        p.add_argument("--node", required=True, help="the resident's home CS, e.g. cs:131148")
        p.add_argument("resident_code", help="住民票コード, 11 digits")
        if name == "dv-register":
            p.add_argument("--municipality", action="append", default=[],
                           help="refuse requests made there only (repeatable; default: every request)")  # fmt: skip
        if name == "dv-remove":
            p.add_argument("--measure", type=int, required=True, help="the measure's id")
        p.set_defaults(func=cmd_copies)

    disclosure = sub.add_parser(
        "disclosure", help="開示: a resident's provisions and 広域交付 copies, each with verified proofs"
    ).add_subparsers(dest="disclosure_cmd", required=True)
    p = disclosure.add_parser("mine", help="the resident with their card, through the residents' portal")
    with_state(p)
    p.add_argument("--card", required=True, help="the resident card's serial (state/resident-cards/<serial>)")
    p.add_argument(
        "--resident", required=True, help="the card holder's 住民票コード (an answer for another is refused)"
    )
    p.add_argument("--node", default="national", help="national (provisions, default) or the home CS (copies)")
    p.add_argument("--seen", type=Path, help="tree heads seen before (default: <state>/disclosure-seen.json)")
    add_pin_options(p, "--pin", PIN_ENV, "the resident's card")
    p.set_defaults(func=cmd_disclosure)
    p = disclosure.add_parser("counter", help="at a CS's counter (role disclose-provisions): one resident's")
    with_state(p)
    p.add_argument("--node", required=True, help="the CS whose counter asks, e.g. cs:131148")
    p.add_argument("--resident", required=True, help="住民票コード, 11 digits")
    p.add_argument("--copies", action="store_true", help="the CS's own 広域交付 copy issuances (default: provisions)")
    p.add_argument("--seen", type=Path, help="tree heads seen before (default: <state>/disclosure-seen.json)")
    p.set_defaults(func=cmd_disclosure)
    stats = sub.add_parser(
        "stats", help="statistics of the national server, with the session of `operator login --node national`"
    ).add_subparsers(dest="stats_cmd", required=True)
    p = stats.add_parser("movements", help="the monthly population movement report (role read-statistics)")
    with_state(p)
    p.add_argument("--node", default="national", help="the node asked (default: national)")
    p.add_argument("--month", required=True, help="YYYY-MM: changes whose change date falls in that month")
    p.add_argument("--csv", type=Path, help="write every row of the report to this CSV file (with a header)")
    p.add_argument("--png", type=Path, help="draw inter-prefecture moves and births/deaths to this PNG file")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("lookup", help="look a resident up as an agency (at the national server)")
    with_state(p)
    p.add_argument("--agency", required=True, help="the agency's corporate number")
    p.add_argument("--business", required=True, help="business code of the legal table row")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--resident-code")
    who.add_argument("--my-number")
    who.add_argument("--agency-identifier", help="the agency's own identifier of the resident (機関別符号)")
    p.set_defaults(func=cmd_lookup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "node" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line diagnostic instead of a traceback
        if args.verbose:
            raise
        print(f"jukinet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
