"""The monthly population movement report end to end: births, a death and a household's move from 中野区
(cs:131148, 東京都) to 横浜市西区 (cs:141038, 神奈川県) over real node processes; the report read by RPC
and with the CLI (CSV and PNG); the national server restarted while changes arrive (nothing counted
twice); a caller without the role refused, a bad month refused, every read audited."""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from conftest import start, wait_until
from netutil import bare_terminal, residents, rpc_error, run_cli, terminal

from jukinet.clients.statistics import StatisticsClient
from jukinet.devnet.operators import enroll_operator, issue_card, log_in
from jukinet.devnet.topology import Topology, pick_free_ports
from jukinet.v1 import audit_pb2, identity_pb2, statistics_pb2

OLD, NEW = "cs:131148", "cs:141038"
R = identity_pb2


def _topology() -> Topology:
    ports = pick_free_ports(4)
    return Topology.parse(f"""
[national]
listen = "127.0.0.1:{ports[0]}"

[[prefecture]]
codes = ["13", "14"]
listen = "127.0.0.1:{ports[1]}"

[[cs]]
municipality = "131148"
listen = "127.0.0.1:{ports[2]}"

[[cs]]
municipality = "141038"
listen = "127.0.0.1:{ports[3]}"
""")


@pytest.fixture(scope="module")
def net(tmp_path_factory, softhsm, worker) -> Iterator:
    with start(tmp_path_factory.mktemp("statistics"), softhsm, worker, _topology()) as running:
        yield running


def _date(day: datetime.date) -> R.Date:
    return R.Date(year=day.year, month=day.month, day=day.day)


def _report(net, month: str) -> statistics_pb2.GetMovementReportResponse:
    return StatisticsClient(terminal(net, "national")).movement_report(month)


def _settled(net, month: str, births: int) -> statistics_pb2.GetMovementReportResponse | None:
    """The report once every change sent has reached the national server and been counted."""
    report = _report(net, month)
    links = [s for cs in (OLD, NEW) for s in terminal(net, cs).status().links if s.pending]
    done = report.totals.births == births and report.read_position == report.feed_position and not links
    return report if done else None


def test_births_a_death_and_a_move_are_reported_by_rpc_and_cli(net, tmp_path):
    today = datetime.date.today()
    month = f"{today.year:04d}-{today.month:02d}"
    old, new = terminal(net, OLD), terminal(net, NEW)
    babies = residents("131148", 3, R.CHANGE_REASON_BIRTH)
    for baby in babies:
        baby.change_date.CopyFrom(_date(today))
        old.record_change(baby)
    died = R.IdentityRecord()
    died.CopyFrom(babies[0])
    died.change_reason = R.CHANGE_REASON_DEATH
    old.record_change(died)
    movers = residents("131148", 2, R.CHANGE_REASON_MOVE_IN)  # arrivals without a grant, then a move
    for mover in movers:
        mover.change_date.CopyFrom(_date(today))
        old.record_change(mover)
    codes = [m.resident_code for m in movers]
    grant = old.move_out(codes, "141038", _date(today), "西区みなとみらい一丁目").grant_id
    wait_until(lambda: _moved_in(new, grant, today), what="the 転入 at the new CS")

    report = wait_until(lambda: _settled(net, month, 3), timeout=60, what="the report to count every change")
    assert report.month == month
    assert report.totals == statistics_pb2.MovementTotals(
        births=3, deaths=1, inter_prefecture_moves=2, arrivals_without_grant=2
    )
    assert [(p.origin_prefecture, p.destination_prefecture, p.moves) for p in report.prefecture_flows] == [
        ("13", "14", 2)
    ]
    assert [(f.origin_municipality, f.destination_municipality, f.moves) for f in report.municipality_flows] == [
        ("131148", "141038", 2)
    ]
    assert {m.municipality_code: (m.births, m.deaths, m.moves_in, m.moves_out) for m in report.municipalities} == {
        "131148": (3, 1, 0, 2),
        "141038": (0, 0, 2, 0),
    }
    assert report.read_position >= 3 + 1 + 2 + 2 + 2 and report.as_of.seconds > 0

    # The national server restarts while another birth arrives: the follower resumes, counts nothing twice.
    national = net.network.topology.node("national")
    net.stop_node(national)
    late = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]
    late.change_date.CopyFrom(_date(today))
    old.record_change(late)
    net.start_node(national)
    log_in(net.worker, terminal(net, "national"), net.operators["national"][0], attempts=3)
    report = wait_until(lambda: _settled(net, month, 4), timeout=60, what="the report after the restart")
    assert (report.totals.births, report.totals.deaths, report.totals.inter_prefecture_moves) == (4, 1, 2)

    # The CLI: the administrator's session at the national terminal, then CSV and PNG.
    state = str(net.network.state)
    login = run_cli("operator", "login", "--state", state, "--node", "national", "--name", "admin",
                    env={"JUKINET_PIN": "123456"})  # fmt: skip
    assert login.returncode == 0, login.stderr
    csv_path, png_path = tmp_path / "movements.csv", tmp_path / "movements.png"
    shown = run_cli("stats", "movements", "--state", state, "--month", month, "--csv", str(csv_path),
                    "--png", str(png_path))  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"population movement report {month} from national" in shown.stdout
    assert "births 4  deaths 1  moves between prefectures 2" in shown.stdout
    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["month", "kind", "origin", "destination", "count"]
    assert [month, "total_births", "", "", "4"] in rows and [month, "total_deaths", "", "", "1"] in rows
    assert [month, "prefecture_flow", "13", "14", "2"] in rows
    assert [month, "municipality_flow", "131148", "141038", "2"] in rows
    assert [month, "births", "131148", "", "4"] in rows and [month, "moves_in", "141038", "", "2"] in rows
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 1000
    bad = run_cli("stats", "movements", "--state", state, "--month", "2026-13")
    assert bad.returncode == 1 and "YYYY-MM" in bad.stderr
    run_cli("operator", "logout", "--state", state, "--node", "national")

    desk = terminal(net, "national")

    def audited() -> list[audit_pb2.AuditEntry]:
        size = audit_pb2.TreeHead.FromString(desk.tree_head().tree_head.payload).tree_size
        entries = [audit_pb2.AuditEntry.FromString(e) for e in desk.audit_entries(0, size)]
        return [e for e in entries if e.action == audit_pb2.AUDIT_ACTION_READ_MOVEMENT_REPORT and e.target == month]

    entries = wait_until(lambda: len(audited()) >= 3 and audited(), timeout=10, what="the reads in the audit log")
    assert {e.actor for e in entries} == {"operator:national:admin"}
    assert all(e.outcome == audit_pb2.AUDIT_OUTCOME_SUCCESS for e in entries)


def _moved_in(new, grant: str, today: datetime.date) -> bool:
    try:
        new.move_in(grant, _date(today), "西区みなとみらい二丁目")
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            return False  # the 転出証明書情報 has not arrived yet
        raise
    return True


def test_only_an_operator_with_the_role_reads_it_and_a_bad_month_is_refused(net):
    month = "2026-11"
    anonymous = rpc_error(StatisticsClient(bare_terminal(net, "national")).movement_report, month)
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    rng = np.random.default_rng(5)
    kit = issue_card(net.worker, net.network, "operator:national:clerk-no-stats", "246810", rng)
    roles = ["answer-disclosure", "administer-operators", "manage-links"]  # everything but read-statistics
    enroll_operator(net.worker, terminal(net, "national"), kit, roles, rng)
    desk = bare_terminal(net, "national")
    log_in(net.worker, desk, kit, rng=rng, attempts=3)
    denied = rpc_error(StatisticsClient(desk).movement_report, month)
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "read-statistics" in denied.details()
    # An operator of a CS with the role, at its own CS's terminal: the service is not there.
    elsewhere = rpc_error(StatisticsClient(terminal(net, OLD)).movement_report, month)
    assert elsewhere.code() == grpc.StatusCode.UNIMPLEMENTED
    for bad in ("2026-13", "", "2026-1", "november"):
        refused = rpc_error(_report, net, bad)
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and "YYYY-MM" in refused.details(), bad
    assert _report(net, month).month == month  # the node keeps serving
