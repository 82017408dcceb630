"""Push notices (プッシュ型通知), end to end over real node processes: subscriptions at the national server,
delivery from a durable cursor over the change feed, acknowledgements, resume after a national crash,
every pushed record in the provision log, and the refusals (no legal basis, limits, another agency's
subscription, an acknowledgement of what was never delivered)."""

from __future__ import annotations

import datetime
import queue
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import start, wait_until
from netutil import AGENCY, BUSINESS, agency, link, residents, rpc_error, terminal

from jukinet.clients.push import PushClient, PushReceiver
from jukinet.devnet.access import push_client
from jukinet.devnet.topology import Topology, pick_free_ports
from jukinet.domain.limits import MAX_SUBSCRIPTIONS_PER_AGENCY, MAX_TARGET_CODES
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2
from jukinet.v1 import subscription_pb2 as S

OLD, NEW = "cs:131148", "cs:141038"
OTHER = "2823456789012"  # a second agency, with a row of its own
R = identity_pb2
FIELDS = '["resident_code", "name", "birth_date", "sex", "address", "change"]'


def _topology(tmp: Path) -> Topology:
    ports = pick_free_ports(4)
    table = tmp / "legal-table.toml"
    table.write_text(
        f"""
[[row]]
agency = "{AGENCY}"
business = "{BUSINESS}"
title = "年金給付"
fields = {FIELDS}

[[row]]
agency = "{OTHER}"
business = "tax"
title = "地方税"
fields = ["resident_code", "name"]
""",
        encoding="utf-8",
    )
    text = f"""
legal_table = "{table}"

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

[[agency]]
corporate_number = "{AGENCY}"
name = "pension (test identity)"

[[agency]]
corporate_number = "{OTHER}"
name = "tax office (test identity)"
"""
    return Topology.parse(text)


@pytest.fixture(scope="module")
def net(tmp_path_factory, softhsm, worker) -> Iterator:
    state = tmp_path_factory.mktemp("push")
    with start(state, softhsm, worker, _topology(state)) as running:
        yield running


def _push(net, corporate_number: str = AGENCY) -> PushClient:
    return push_client(net.network, corporate_number)


def _date(day: datetime.date) -> R.Date:
    return R.Date(year=day.year, month=day.month, day=day.day)


def _at_national(net, code: str, reason: int) -> bool:
    try:
        return agency(net).by_resident_code(BUSINESS, code).record.change_reason == reason
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return False


def _collect(receiver: PushReceiver, until, timeout: float = 60.0) -> list[S.ReceiveResponse]:
    """Messages (acknowledging each) until ``until(records so far)`` holds."""
    messages: list[S.ReceiveResponse] = []
    records: list[S.PushedRecord] = []
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
    while not until(records):
        left = (deadline - datetime.datetime.now()).total_seconds()
        if left <= 0:
            pytest.fail(f"timed out; received {[(r.position, r.record.change_reason) for r in records]}")
        try:
            message = receiver.next(timeout=left)
        except queue.Empty:
            continue
        assert message is not None, receiver.error
        messages.append(message)
        records += message.records
        receiver.acknowledge(message.last_position)
    return messages


def _provisions(net) -> list[admin_pb2.ProvisionEntry]:
    national, out, after = terminal(net, "national"), [], 0
    while page := national.provisions(after, 1000):
        out += page
        after = page[-1].provision_id
    return out


def _cursor(push: PushClient, sub: S.Subscription) -> int:
    return next(s.cursor for s in push.subscriptions() if s.subscription_id == sub.subscription_id)


def _register_person(net) -> R.IdentityRecord:
    person = residents("131148", 1)[0]
    person.change_date.CopyFrom(R.Date(year=2020, month=4, day=1))
    if person.birth_date.year >= 2020:
        person.birth_date.CopyFrom(R.Date(year=1990, month=5, day=5))
    terminal(net, OLD).record_change(person)
    wait_until(lambda: _at_national(net, person.resident_code, person.change_reason), what="the person at national")
    return person


def test_no_legal_basis_and_bad_targets_are_refused_and_store_nothing(net):
    push = _push(net)
    cases = [
        (("tax", S.PUSH_MODE_EVERY_CHANGE), {"municipality_codes": ["131148"]}, grpc.StatusCode.PERMISSION_DENIED,
         "no row in the legal table"),
        ((BUSINESS, S.PUSH_MODE_EVERY_CHANGE), {"resident_codes": ["12345678901"]}, grpc.StatusCode.INVALID_ARGUMENT,
         "resident_codes[0]"),
        ((BUSINESS, S.PUSH_MODE_EVERY_CHANGE), {"resident_codes": [f"{i:010d}" for i in range(MAX_TARGET_CODES + 1)]},
         grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_TARGET_CODES}"),
        ((BUSINESS, S.PUSH_MODE_EVERY_CHANGE), {}, grpc.StatusCode.INVALID_ARGUMENT, "exactly one of"),
        ((BUSINESS, S.PUSH_MODE_UNSPECIFIED), {"municipality_codes": ["131148"]}, grpc.StatusCode.INVALID_ARGUMENT,
         "not a push mode"),
        ((BUSINESS, S.PUSH_MODE_MONTHLY_COHORT), {"municipality_codes": ["131148"]},
         grpc.StatusCode.INVALID_ARGUMENT, "needs an age"),
        ((BUSINESS, S.PUSH_MODE_EVERY_CHANGE), {"municipality_codes": ["131149"]}, grpc.StatusCode.INVALID_ARGUMENT,
         "municipality_codes[0]"),
    ]  # fmt: skip
    for (business, mode), target, status, words in cases:
        err = rpc_error(push.subscribe, business, mode, **target)
        assert err.code() == status and words in err.details(), err.details()
    assert push.subscriptions() == []

    def audited() -> list[audit_pb2.AuditEntry]:  # every refusal counted, as the lookups' are
        desk = terminal(net, "national")
        head = audit_pb2.TreeHead.FromString(desk.tree_head().tree_head.payload).tree_size
        entries = [audit_pb2.AuditEntry.FromString(e) for e in desk.audit_entries(0, head)]
        return [e for e in entries if e.action == audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY
                and e.outcome != audit_pb2.AUDIT_OUTCOME_SUCCESS and e.actor == f"agency:{AGENCY}"]  # fmt: skip

    def written() -> list[str] | None:  # the first of each kind is written at once, the rest counted
        details = [e.detail for e in audited()]
        kinds = ("DENIED: ", "INVALID: ", "EXHAUSTED: ")
        return details if all(any(d.startswith(k) for d in details) for k in kinds) else None

    details = wait_until(written, timeout=15, what="the refusals in the national audit log")
    assert any("no row in the legal table" in d and "'tax'" in d for d in details)
    # The rest of the node serves on.
    assert push.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, municipality_codes=["131148"]).subscription_id
    push.cancel(push.subscriptions()[0].subscription_id)


def test_an_agency_holds_a_bounded_number_of_subscriptions(net):
    push = _push(net, OTHER)
    made = [push.subscribe("tax", S.PUSH_MODE_DEATHS_ONLY, municipality_codes=["131148"]).subscription_id
            for _ in range(MAX_SUBSCRIPTIONS_PER_AGENCY)]  # fmt: skip
    err = rpc_error(push.subscribe, "tax", S.PUSH_MODE_DEATHS_ONLY, municipality_codes=["131148"])
    assert (
        err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and f"at most {MAX_SUBSCRIPTIONS_PER_AGENCY}" in err.details()
    )
    assert len(push.subscriptions()) == MAX_SUBSCRIPTIONS_PER_AGENCY
    for sub in made:
        push.cancel(sub)
    assert push.subscriptions() == []


def test_a_subscriber_receives_a_move_and_a_death_and_each_record_is_a_provision(net):
    person = _register_person(net)
    code = person.resident_code
    push = _push(net)
    every = push.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, resident_codes=[code])
    deaths = push.subscribe(BUSINESS, S.PUSH_MODE_DEATHS_ONLY, resident_codes=[code])
    other = _push(net, OTHER)
    # Another agency cannot receive or cancel it: as absent as one never made.
    err = other.receive(every.subscription_id).wait_closed()
    assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(other.cancel, every.subscription_id)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert [s.subscription_id for s in push.subscriptions()] == [every.subscription_id, deaths.subscription_id]

    # 転出 at 中野区, 転入 at 横浜市西区, then death there.
    today = datetime.date.today()
    moved_out = terminal(net, OLD).move_out([code], "141038", _date(today), "西区みなとみらい一丁目")
    wait_until(lambda: link(net, OLD, NEW).pending == 0, what="the 転出証明書情報 handed over")
    terminal(net, NEW).move_in(moved_out.grant_id, _date(today), "西区みなとみらい二丁目")
    wait_until(lambda: _at_national(net, code, R.CHANGE_REASON_MOVE_IN), what="the 転入 at national")
    died = terminal(net, NEW).resident(code)
    died.change_reason = R.CHANGE_REASON_DEATH
    terminal(net, NEW).record_change(died)

    receiver = push.receive(every.subscription_id)
    got = _collect(receiver, lambda rs: any(r.record.change_reason == R.CHANGE_REASON_DEATH for r in rs))
    wait_until(lambda: _cursor(push, every) == got[-1].last_position, what="the last acknowledgement, durable")
    receiver.close()
    records = [r for m in got for r in m.records]
    reasons = [r.record.change_reason for r in records]
    assert R.CHANGE_REASON_MOVE_OUT in reasons and R.CHANGE_REASON_MOVE_IN in reasons
    assert reasons[-1] == R.CHANGE_REASON_DEATH
    move_in = next(r for r in records if r.record.change_reason == R.CHANGE_REASON_MOVE_IN)
    assert move_in.record.address.municipality_code == "141038"
    assert all(r.record.resident_code == code and not r.record.my_number for r in records)  # the row's fields only
    positions = [r.position for r in records]
    assert positions == sorted(set(positions)) and positions[0] > every.start_position
    for message in got:
        assert message.first_position <= message.last_position
        assert all(message.first_position <= r.position <= message.last_position for r in message.records)
    assert all(r.committed_at.ToMilliseconds() > 0 for r in records)

    receiver = push.receive(deaths.subscription_id)
    only = _collect(receiver, lambda rs: bool(rs))
    receiver.close()
    (death,) = [r for m in only for r in m.records]
    assert death.record.change_reason == R.CHANGE_REASON_DEATH and death.position == positions[-1]

    # Every pushed record is in the provision log, before it left: kind PUSH, the subscription named.
    logged = {e.provision_id: e for e in _provisions(net) if e.query_kind == admin_pb2.QUERY_KIND_PUSH}
    for sub, pushed in ((every, records), (deaths, [death])):
        for r in pushed:
            entry = logged[r.provision_id]
            assert (entry.reference, entry.resident_code, entry.agency) == (
                sub.subscription_id,
                code,
                f"agency:{AGENCY}",
            )
            assert entry.business_code == BUSINESS and "my_number" not in entry.items and "name" in entry.items


def test_acknowledging_a_position_never_delivered_is_refused_and_moves_nothing(net):
    person = _register_person(net)
    push = _push(net)
    sub = push.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, resident_codes=[person.resident_code])
    changed = terminal(net, OLD).resident(person.resident_code)
    changed.change_reason = R.CHANGE_REASON_RELOCATION
    changed.address.text = "中野二丁目1番1号"
    terminal(net, OLD).record_change(changed)
    receiver = push.receive(sub.subscription_id)
    message = receiver.next(timeout=30)
    assert message is not None and len(message.records) == 1
    receiver.acknowledge(message.last_position + 1)  # never delivered
    err = receiver.wait_closed()
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "never delivered" in err.details()
    (listed,) = [s for s in push.subscriptions() if s.subscription_id == sub.subscription_id]
    assert listed.cursor == sub.cursor and listed.delivered == message.last_position
    # A new Receive resumes at the cursor: the same record, at the same position.
    again = push.receive(sub.subscription_id)
    resent = again.next(timeout=30)
    assert resent is not None and [r.position for r in resent.records] == [r.position for r in message.records]
    again.acknowledge(resent.last_position)
    wait_until(
        lambda: (
            [s.cursor for s in push.subscriptions() if s.subscription_id == sub.subscription_id]
            == [resent.last_position]
        ),
        what="the cursor to move",
    )
    again.close()
    push.cancel(sub.subscription_id)


def test_a_national_crash_mid_stream_loses_and_skips_nothing(net):
    push = _push(net)
    sub = push.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, municipality_codes=["131148"])
    people = residents("131148", 600)
    terminal(net, OLD).register(people, chunk_size=100)
    codes = {p.resident_code for p in people}

    receiver = push.receive(sub.subscription_id)
    acked: set[str] = set()
    last_acked = sub.cursor
    while len(acked) < 200:  # acknowledge about a third, then the national server dies
        message = receiver.next(timeout=60)
        assert message is not None
        acked |= {r.record.resident_code for r in message.records}
        receiver.acknowledge(message.last_position)
        last_acked = message.last_position
    wait_until(lambda: _cursor(push, sub) == last_acked, what="the acknowledgement to be durable")
    national = net.network.topology.node("national")
    net.kill_node(national)
    assert receiver.wait_closed() is not None
    net.start_node(national)

    receiver = push.receive(sub.subscription_id)
    first = receiver.next(timeout=60)
    assert first is not None and first.first_position == last_acked + 1  # from the cursor, nothing skipped
    after: list[S.PushedRecord] = list(first.records)
    receiver.acknowledge(first.last_position)
    before = acked | {r.record.resident_code for r in after}
    rest = _collect(receiver, lambda rs: before | {r.record.resident_code for r in rs} >= codes)
    after += [r for m in rest for r in m.records]
    receiver.close()
    received = acked | {r.record.resident_code for r in after}
    assert received >= codes  # nothing lost
    positions = [r.position for r in after]
    assert positions == sorted(set(positions)) and positions[0] > last_acked  # no position twice, in order
    push.cancel(sub.subscription_id)
