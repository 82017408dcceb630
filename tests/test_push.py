"""Push subscriptions without gRPC: the target rules, the Japan-time periods, and PushService over a real
LMDB store on a manual clock — acknowledgements, resume, deaths only, the daily digest, the monthly cohort,
and the refusals."""

from __future__ import annotations

import asyncio
import datetime
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import CorporateNumber, generate_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import FIELD_GROUPS, Identifier, LegalTables, TableRow
from jukinet.domain.limits import MAX_SUBSCRIPTIONS_PER_AGENCY, MAX_TARGET_CODES, MAX_TARGET_MUNICIPALITIES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.push import JST, Filter, Key, check_target, day_bounds, month_bounds, month_of, reaching_month
from jukinet.domain.records import status_for
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.national.feed import Dispatcher, FeedReader, Mailbox
from jukinet.server.national.push import DIGEST_GRACE_MS, PushLog, PushService, Stream
from jukinet.server.runtime.wakeup import Wakeup
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.v1 import admin_pb2, identity_pb2, notice_pb2
from jukinet.v1 import subscription_pb2 as S

R = identity_pb2
AGENCY, OTHER = NodeId.agency("7123456789012"), NodeId.agency("2823456789012")
_rng = random.Random(99)


def _ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime.datetime(year, month, day, hour, tzinfo=JST).timestamp() * 1000)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[NodeStorage]:
    s = NodeStorage.open(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(_ms(2026, 11, 26, 10))


@pytest.fixture
def push(storage: NodeStorage, clock: ManualClock) -> PushService:
    fields = frozenset(FIELD_GROUPS) - {"my_number"}
    tables = LegalTables.of(
        [
            TableRow(CorporateNumber.parse(AGENCY.code), "pension", "年金", fields),
            TableRow(CorporateNumber.parse(OTHER.code), "tax", "税", frozenset({"resident_code", "name"})),
            TableRow(CorporateNumber.parse(OTHER.code), "survey", "調査", frozenset({"name"}),
                     identifier=Identifier.AGENCY_IDENTIFIER),
        ]
    )  # fmt: skip
    return PushService(storage, lambda: tables, Wakeup(), clock)


def _person(municipality: str = "131148", **changes) -> R.IdentityRecord:
    record = synthetic_resident(_rng, municipality, R.CHANGE_REASON_MOVE_IN)
    record.resident_code = generate_resident_code(_rng)
    for name, value in changes.items():
        if isinstance(value, R.Date):
            getattr(record, name).CopyFrom(value)
        else:
            setattr(record, name, value)
    record.status = status_for(record.change_reason)
    return record


def _commit(storage: NodeStorage, records: list[R.IdentityRecord], at_ms: int) -> list[int]:
    """Store ``records`` as the national write path does: latest state, feed, and the run's commit time."""

    def write(txn) -> list[int]:
        first = storage.history.reserve(txn, len(records))
        for i, record in enumerate(records):
            notice = notice_pb2.ChangeNotice(origin=f"cs:{record.address.municipality_code}", record=record)
            storage.records.put(txn, record, storage.records.current(txn, record.resident_code))
            storage.history.append(txn, record.resident_code, notice.SerializeToString(), first + i)
        storage.feed_times.mark(txn, first, at_ms)
        return list(range(first, first + len(records)))

    return storage.env.write(write)


def _changed(record: R.IdentityRecord, reason: int) -> R.IdentityRecord:
    out = R.IdentityRecord()
    out.CopyFrom(record)
    out.change_reason = reason
    out.status = status_for(reason)
    return out


def _drain(push: PushService, stream: Stream) -> list[S.ReceiveResponse]:
    out = []
    while (message := push.deliver_now(stream)) is not None:
        out.append(message)
    return out


# -- the rules without I/O ---------------------------------------------------------------------------


def test_targets_are_checked_and_made_canonical() -> None:
    a, b = generate_resident_code(_rng), generate_resident_code(_rng)
    every = S.PUSH_MODE_EVERY_CHANGE
    got = check_target(S.PushTarget(resident_codes=[b, a, b]), every)
    assert list(got.resident_codes) == sorted({a, b})
    refused = [
        (S.PushTarget(), every, Problem.INVALID, "exactly one of"),
        (S.PushTarget(resident_codes=[a], municipality_codes=["131148"]), every, Problem.INVALID, "exactly one of"),
        (S.PushTarget(resident_codes=[a] * (MAX_TARGET_CODES + 1)), every, Problem.EXHAUSTED, "at most"),
        (S.PushTarget(municipality_codes=["131148"] * (MAX_TARGET_MUNICIPALITIES + 1)), every, Problem.EXHAUSTED,
         "at most"),
        (S.PushTarget(resident_codes=["12345678901"]), every, Problem.INVALID, "resident_codes[0]"),
        (S.PushTarget(municipality_codes=["13114"]), every, Problem.INVALID, "municipality_codes[0]"),
        (S.PushTarget(municipality_codes=["131148"], reaching_age=65), every, Problem.INVALID, "only for the monthly"),
        (S.PushTarget(municipality_codes=["131148"]), S.PUSH_MODE_MONTHLY_COHORT, Problem.INVALID, "needs an age"),
        (S.PushTarget(municipality_codes=["131148"], reaching_age=151), S.PUSH_MODE_MONTHLY_COHORT, Problem.INVALID,
         "needs an age"),
        (S.PushTarget(municipality_codes=["131148"]), 9, Problem.INVALID, "not a push mode"),
    ]  # fmt: skip
    for target, mode, problem, words in refused:
        with pytest.raises(Rejected) as caught:
            check_target(target, mode)
        assert caught.value.problem is problem and words in str(caught.value), target


def test_age_is_reached_the_day_before_the_birthday_and_periods_are_japan_time() -> None:
    assert reaching_month(R.Date(year=1961, month=3, day=15), 65) == 202603
    assert reaching_month(R.Date(year=1961, month=3, day=1), 65) == 202602  # the eve is 28 February
    assert reaching_month(R.Date(year=1960, month=2, day=29), 66) == 202602
    assert reaching_month(R.Date(year=1961, month=1, day=1), 65) == 202512
    assert reaching_month(R.Date(year=1961, month=2, day=30), 65) is None
    start, end = day_bounds(datetime.date(2026, 11, 26))
    assert start == _ms(2026, 11, 26) and end - start == 86_400_000
    assert datetime.datetime.fromtimestamp(start / 1000, datetime.UTC).hour == 15  # 00:00 JST is 15:00 UTC
    assert month_bounds(202612) == (_ms(2026, 12, 1), _ms(2027, 1, 1))
    assert month_of(_ms(2026, 12, 1) - 1) == 202611


# -- subscriptions ------------------------------------------------------------------------------------


def test_no_legal_basis_limits_and_another_agencys_subscription(push: PushService, storage: NodeStorage) -> None:
    target = S.PushTarget(municipality_codes=["131148"])
    with pytest.raises(Rejected) as caught:
        push.subscribe(AGENCY, "tax", target, S.PUSH_MODE_EVERY_CHANGE)  # the row is OTHER's
    assert caught.value.problem is Problem.DENIED
    with pytest.raises(Rejected) as caught:  # a row naming residents by 機関別符号, at a server without their key
        push.subscribe(OTHER, "survey", target, S.PUSH_MODE_EVERY_CHANGE)
    assert caught.value.problem is Problem.DENIED and "agency identifier" in str(caught.value)
    assert push.list(AGENCY) == [] and push.list(OTHER) == [] and storage.env.entries("subscriptions") == 0
    made = [push.subscribe(OTHER, "tax", target, S.PUSH_MODE_DEATHS_ONLY) for _ in range(MAX_SUBSCRIPTIONS_PER_AGENCY)]
    with pytest.raises(Rejected) as caught:
        push.subscribe(OTHER, "tax", target, S.PUSH_MODE_DEATHS_ONLY)
    assert caught.value.problem is Problem.EXHAUSTED
    mine = push.subscribe(AGENCY, "pension", target, S.PUSH_MODE_EVERY_CHANGE)  # its own share is untouched
    for action in (lambda: push.open(OTHER, mine.subscription_id), lambda: push.cancel(OTHER, mine.subscription_id)):
        with pytest.raises(Rejected) as caught:
            action()
        assert caught.value.problem is Problem.NOT_FOUND
    for bad in ("", "sub-" + "9" * 600, "süb-1"):  # ids that could name none
        with pytest.raises(Rejected) as caught:
            push.cancel(AGENCY, bad)
        assert caught.value.problem is Problem.NOT_FOUND
    push.cancel(OTHER, made[0].subscription_id)
    assert len(push.list(OTHER)) == MAX_SUBSCRIPTIONS_PER_AGENCY - 1
    assert [s.subscription_id for s in push.list(AGENCY)] == [mine.subscription_id]


def test_changes_are_pushed_from_the_cursor_and_acknowledged(push: PushService, storage: NodeStorage, clock) -> None:
    early = _person()
    _commit(storage, [early], clock.now_ms())  # before the subscription: not pushed
    sub = push.subscribe(AGENCY, "pension", S.PushTarget(municipality_codes=["131148"]), S.PUSH_MODE_EVERY_CHANGE)
    deaths = push.subscribe(AGENCY, "pension", S.PushTarget(municipality_codes=["131148"]), S.PUSH_MODE_DEATHS_ONLY)
    people = [_person(), _person("131016"), _person()]
    positions = _commit(storage, people, clock.now_ms())
    died = _changed(people[0], R.CHANGE_REASON_DEATH)
    (death_at,) = _commit(storage, [died], clock.now_ms() + 5)

    stream = push.open(AGENCY, sub.subscription_id)
    (message,) = _drain(push, stream)
    got = [(r.position, r.record.resident_code, r.record.change_reason) for r in message.records]
    assert got == [
        (positions[0], people[0].resident_code, people[0].change_reason),
        (positions[2], people[2].resident_code, people[2].change_reason),
        (death_at, died.resident_code, R.CHANGE_REASON_DEATH),
    ]
    assert message.first_position == sub.cursor + 1 and message.last_position == death_at
    assert all(not r.record.my_number for r in message.records)  # the row's fields only
    assert message.records[-1].committed_at.ToMilliseconds() == clock.now_ms() + 5
    logged = storage.provisions.page(0, 100)
    assert [(e.resident_code, e.reference, e.query_kind) for e in logged] == [
        (r.record.resident_code, sub.subscription_id, admin_pb2.QUERY_KIND_PUSH) for r in message.records
    ]
    assert [e.provision_id for e in logged] == [r.provision_id for r in message.records]

    with pytest.raises(Rejected) as caught:  # never delivered
        push.acknowledge(stream, death_at + 1)
    assert caught.value.problem is Problem.CONFLICT and "never delivered" in str(caught.value)
    assert push.list(AGENCY)[0].cursor == sub.cursor
    # Resume (as after a restart): the same records at the same positions.
    again = push.open(AGENCY, sub.subscription_id)
    assert stream.failure is not None and stream.failure.problem is Problem.CONFLICT  # superseded
    (resent,) = _drain(push, again)
    assert [r.position for r in resent.records] == [r.position for r in message.records]
    push.acknowledge(again, positions[2])
    push.acknowledge(again, positions[0])  # backwards: nothing moves
    assert push.list(AGENCY)[0].cursor == positions[2]
    third = push.open(AGENCY, sub.subscription_id)
    (rest,) = _drain(push, third)
    assert [r.position for r in rest.records] == [death_at] and rest.first_position == positions[2] + 1

    (only,) = _drain(push, push.open(AGENCY, deaths.subscription_id))
    assert [(r.position, r.record.change_reason) for r in only.records] == [(death_at, R.CHANGE_REASON_DEATH)]


def test_a_quiet_stream_reports_how_far_it_read(push: PushService, storage: NodeStorage, clock) -> None:
    mine = _person()
    sub = push.subscribe(AGENCY, "pension", S.PushTarget(resident_codes=[mine.resident_code]), S.PUSH_MODE_EVERY_CHANGE)
    others = _commit(storage, [_person() for _ in range(5)], clock.now_ms())
    stream = push.open(AGENCY, sub.subscription_id)
    assert push.deliver_now(stream) is None  # nothing for it
    progress = push.deliver_now(stream, progress=True)
    assert progress is not None and not progress.records and progress.last_position == others[-1]
    push.acknowledge(stream, progress.last_position)
    assert push.list(AGENCY)[0].cursor == others[-1]
    assert storage.provisions.count() == 0  # nothing was provided


def test_the_daily_digest_sends_each_residents_latest_state_of_a_japan_day(
    push: PushService, storage: NodeStorage, clock
) -> None:
    a, b = _person(), _person()
    sub = push.subscribe(AGENCY, "pension", S.PushTarget(municipality_codes=["131148"]), S.PUSH_MODE_DAILY_DIGEST)
    day = _ms(2026, 11, 26)
    _commit(storage, [a, b], day + 3_600_000)
    later = _changed(a, R.CHANGE_REASON_NAME_CHANGE)
    later.name.kanji = "改名 太郎"
    (a_late,) = _commit(storage, [later], day + 20 * 3_600_000)
    stream = push.open(AGENCY, sub.subscription_id)
    assert push.deliver_now(stream) is None  # the day is not over
    (tomorrow,) = _commit(storage, [_person()], day + 86_400_000 + 60_000)
    (digest,) = [m for m in [push.deliver_now(stream)] if m is not None]
    assert (digest.period_start.ToMilliseconds(), digest.period_end.ToMilliseconds()) == day_bounds(
        datetime.date(2026, 11, 26)
    )
    assert [(r.record.resident_code, r.position) for r in digest.records] == [
        (b.resident_code, a_late - 1),
        (a.resident_code, a_late),
    ]
    assert digest.records[1].record.name.kanji == "改名 太郎"  # the latest state, once
    assert digest.last_position == tomorrow - 1
    push.acknowledge(stream, digest.last_position)
    assert push.deliver_now(stream) is None  # the 27th is not over
    clock.advance((day + 2 * 86_400_000 + DIGEST_GRACE_MS - clock.now_ms()) / 1000)
    nxt = push.deliver_now(stream)
    assert nxt is not None and [r.position for r in nxt.records] == [tomorrow]
    assert nxt.period_start.ToMilliseconds() == day + 86_400_000


def test_the_monthly_cohort_is_taken_once_and_acknowledged_whole(
    push: PushService, storage: NodeStorage, clock
) -> None:
    # November 2026: 65 is reached by those born 2 November 1961 .. 1 December 1961.
    in_cohort = [
        _person(birth_date=R.Date(year=1961, month=11, day=15)),
        _person(birth_date=R.Date(year=1961, month=12, day=1)),
    ]
    outside = [
        _person(birth_date=R.Date(year=1961, month=11, day=1)),
        _person("131016", birth_date=R.Date(year=1961, month=11, day=9)),
    ]
    dead = _person(birth_date=R.Date(year=1961, month=11, day=20))
    december_one = _person(birth_date=R.Date(year=1961, month=12, day=10))
    _commit(storage, [*in_cohort, *outside, dead, december_one], clock.now_ms())
    _commit(storage, [_changed(dead, R.CHANGE_REASON_DEATH)], clock.now_ms())
    target = S.PushTarget(municipality_codes=["131148"], reaching_age=65)
    sub = push.subscribe(AGENCY, "pension", target, S.PUSH_MODE_MONTHLY_COHORT)
    stream = push.open(AGENCY, sub.subscription_id)
    assert push._cohort_scan.acquire(blocking=False)  # another cohort being computed (a scan of every record)
    try:
        assert push.deliver_now(stream) is None  # one at a time: this one waits for its next wake-up
    finally:
        push._cohort_scan.release()
    cohort = push.deliver_now(stream)
    assert cohort is not None
    assert sorted(r.record.resident_code for r in cohort.records) == sorted(p.resident_code for p in in_cohort)
    assert (cohort.period_start.ToMilliseconds(), cohort.period_end.ToMilliseconds()) == month_bounds(202611)
    assert push.deliver_now(stream) is None  # once a month
    # A newcomer after the snapshot does not change a resend.
    _commit(storage, [_person(birth_date=R.Date(year=1961, month=11, day=25))], clock.now_ms())
    again = push.open(AGENCY, sub.subscription_id)
    resent = push.deliver_now(again)
    assert resent is not None
    assert [(r.position, r.record) for r in resent.records] == [(r.position, r.record) for r in cohort.records]
    assert resent.first_position == resent.last_position == cohort.last_position  # the snapshot
    with pytest.raises(Rejected) as caught:
        push.acknowledge(again, resent.last_position + 1)
    assert caught.value.problem is Problem.CONFLICT
    push.acknowledge(again, resent.last_position)
    assert push.deliver_now(again) is None
    assert push.deliver_now(push.open(AGENCY, sub.subscription_id)) is None  # acknowledged, durably
    clock.advance((_ms(2026, 12, 1, 1) - clock.now_ms()) / 1000)
    december = push.deliver_now(push.open(AGENCY, sub.subscription_id))
    assert december is not None  # born 1 December: reached it in November, not again
    assert [r.record.resident_code for r in december.records] == [december_one.resident_code]


def test_a_cancelled_subscription_stops_and_stores_nothing_more(push: PushService, storage: NodeStorage, clock) -> None:
    sub = push.subscribe(AGENCY, "pension", S.PushTarget(municipality_codes=["131148"]), S.PUSH_MODE_EVERY_CHANGE)
    stream = push.open(AGENCY, sub.subscription_id)
    push.cancel(AGENCY, sub.subscription_id)
    assert stream.failure is not None and stream.failure.problem is Problem.NOT_FOUND
    _commit(storage, [_person()], clock.now_ms())
    with pytest.raises(Rejected):
        push.deliver_now(stream)
    assert storage.provisions.count() == 0 and push.list(AGENCY) == []


def test_the_feed_cache_serves_streams_that_keep_up_and_those_that_lag(storage: NodeStorage, clock) -> None:
    from jukinet.server.national.push import FeedReader

    positions = _commit(storage, [_person() for _ in range(30)], clock.now_ms())
    reader = FeedReader(storage, capacity=10)
    assert [e.position for e in reader.read(positions[4], 3)] == positions[5:8]  # loads and caches 6..8
    assert [e.position for e in reader.read(positions[7], 100)] == positions[8:]  # extends, keeps the last 10
    assert [e.position for e in reader.read(0, 4)] == positions[:4]  # behind the cache: from the store
    assert [e.position for e in reader.read(positions[-5], 2)] == positions[-4:-2]
    assert reader.read(positions[-1], 5) == []
    more = _commit(storage, [_person()], clock.now_ms())
    assert [e.position for e in reader.read(positions[-1], 5)] == more


def test_streams_woken_together_decode_each_new_entry_once(storage: NodeStorage, clock) -> None:
    """A hundred streams at the feed's end, woken by one commit: the new entries are loaded and decoded by
    one of them and read from the cache by the others (a thundering herd decoding everything a hundred
    times made push delivery seconds late under ingest)."""
    positions = _commit(storage, [_person() for _ in range(5)], clock.now_ms())
    reader = FeedReader(storage, capacity=1000)
    assert [e.position for e in reader.read(0, 100)] == positions
    loaded: list[int] = []
    real = reader._load

    def counting(after: int, limit: int) -> list:
        out = real(after, limit)
        loaded.extend(e.position for e in out)
        time.sleep(0.01)  # a slow decode: the others arrive meanwhile
        return out

    reader._load = counting  # type: ignore[method-assign]
    more = _commit(storage, [_person() for _ in range(200)], clock.now_ms())
    got: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda: got.append([e.position for e in reader.read(positions[-1], 500)]))
        for _ in range(100)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [more] * 100
    assert sorted(loaded) == more  # each new entry loaded (and decoded) once


def test_a_run_of_entries_is_selected_as_matching_them_one_by_one_would() -> None:
    """Filter.select (a C-level map over a run) keeps exactly what Filter.matches keeps, in order: codes,
    former codes (住民票コード変更), municipalities, deaths only."""
    from dataclasses import dataclass

    from jukinet.domain.push import DEATH, Filter, Key

    @dataclass
    class Entry:
        key: Key

    rng = random.Random(11)
    codes = [f"{i:011d}" for i in range(40)]
    places = ["131148", "131016", "141038"]
    reasons = [DEATH, identity_pb2.CHANGE_REASON_RELOCATION, identity_pb2.CHANGE_REASON_MOVE_IN]
    entries = [
        Entry(Key(rng.choice(codes), rng.choice(["", "", rng.choice(codes)]), rng.choice(places), rng.choice(reasons)))
        for _ in range(2000)
    ]
    for _ in range(30):
        filter_ = Filter(
            frozenset(rng.sample(codes, rng.randrange(0, 6))),
            frozenset(rng.sample(places, rng.randrange(1, 3))),
            rng.random() < 0.3,
        )
        assert filter_.select(entries) == [e for e in entries if filter_.matches(e.key)]


def _commit_notices(storage: NodeStorage, notices: list[notice_pb2.ChangeNotice], at_ms: int) -> list[int]:
    def write(txn) -> list[int]:
        first = storage.history.reserve(txn, len(notices))
        for i, notice in enumerate(notices):
            storage.history.append(txn, notice.record.resident_code, notice.SerializeToString(), first + i)
        storage.feed_times.mark(txn, first, at_ms)
        return list(range(first, first + len(notices)))

    return storage.env.write(write)


def test_streams_that_keep_up_get_exactly_their_matches_from_the_dispatcher(
    push: PushService, storage: NodeStorage, clock
) -> None:
    """Once a stream has read to the feed's end it joins the dispatcher, which reads each new entry once and
    hands it to the streams it matches: by code (also a 住民票コード変更's former code), by municipality,
    deaths only. What each stream receives is what matching every entry one by one gives."""
    rng = random.Random(5)
    people = [_person(rng.choice(["131148", "131016", "131024"])) for _ in range(60)]
    _commit(storage, people, clock.now_ms())
    targets = [
        (S.PushTarget(resident_codes=[p.resident_code for p in people[:20]]), S.PUSH_MODE_EVERY_CHANGE),
        (S.PushTarget(resident_codes=[p.resident_code for p in people[10:40]]), S.PUSH_MODE_EVERY_CHANGE),
        (S.PushTarget(municipality_codes=["131016"]), S.PUSH_MODE_EVERY_CHANGE),
        (S.PushTarget(municipality_codes=["131148", "131024"]), S.PUSH_MODE_DEATHS_ONLY),
    ]
    subs = [push.subscribe(AGENCY, "pension", t, m) for t, m in targets]
    streams = [push.open(AGENCY, s.subscription_id) for s in subs]
    for stream in streams:
        assert _drain(push, stream) == [] and stream.mailbox is not None and stream.mailbox.joined
    reads: list[int] = []
    real = push._feed.read

    def counting(after: int, limit: int) -> list:
        out = real(after, limit)
        reads.extend(e.position for e in out)
        return out

    push._feed.read = counting  # type: ignore[method-assign]
    sent: list[notice_pb2.ChangeNotice] = []
    for _ in range(4):  # four commits of changes, deaths and code changes, each drained by every stream
        batch = []
        for person in rng.sample(people, 15):
            reason = rng.choice(
                [R.CHANGE_REASON_RELOCATION, R.CHANGE_REASON_DEATH, R.CHANGE_REASON_RESIDENT_CODE_CHANGE]
            )
            changed = _changed(person, reason)
            notice = notice_pb2.ChangeNotice(origin="cs:131148", record=changed)
            if reason == R.CHANGE_REASON_RESIDENT_CODE_CHANGE:
                notice.former_resident_code = person.resident_code
                notice.record.resident_code = generate_resident_code(rng)  # the notice holds a copy
            batch.append(notice)
        positions = _commit_notices(storage, batch, clock.now_ms())
        sent += batch
        got = {s.id: [r.position for m in _drain(push, s) for r in m.records] for s in streams}
        for stream in streams:
            keys = [(p, Key.of(n)) for p, n in zip(positions, batch, strict=True)]
            assert got[stream.id] == [p for p, k in keys if stream.filter.matches(k)], stream.sub.target
        assert all(s.mailbox is not None and s.mailbox.joined for s in streams)
    assert sorted(reads) == sorted(set(reads)) and len(reads) == len(sent)  # each new entry read once, not per stream


def test_a_stream_that_falls_behind_leaves_the_dispatcher_and_misses_nothing(
    push: PushService, storage: NodeStorage, clock
) -> None:
    """A stream whose matches pile up (its agency does not take them: a full window, a dead connection) is
    let go once its mailbox passes the bound, and reads the feed itself from its own mark, then joins again."""
    push._dispatch = Dispatcher(push._feed, storage.env, capacity=5)
    place = S.PushTarget(municipality_codes=["131148"])
    slow, quick = (push.subscribe(AGENCY, "pension", place, S.PUSH_MODE_EVERY_CHANGE) for _ in range(2))
    slow_stream, quick_stream = push.open(AGENCY, slow.subscription_id), push.open(AGENCY, quick.subscription_id)
    assert _drain(push, slow_stream) == [] and _drain(push, quick_stream) == []
    positions = []
    for _ in range(4):  # the quick one takes its mail after each commit; the slow one takes nothing
        positions += _commit(storage, [_person() for _ in range(3)], clock.now_ms())
        assert [r.position for m in _drain(push, quick_stream) for r in m.records] == positions[-3:]
    assert slow_stream.mailbox is not None and not slow_stream.mailbox.joined  # let go, its mail dropped
    assert not slow_stream.mailbox.entries
    assert [r.position for m in _drain(push, slow_stream) for r in m.records] == positions  # all of it, in order
    assert slow_stream.mailbox.joined  # caught up: back in
    more = _commit(storage, [_person()], clock.now_ms())
    assert [r.position for m in _drain(push, slow_stream) for r in m.records] == more


def test_a_mailbox_never_holds_what_its_stream_already_read() -> None:
    """A stream that read past the dispatcher's mark before joining is not handed those entries again."""
    from jukinet.server.national.feed import FeedEntry

    class Feed:
        def __init__(self) -> None:
            self.entries: list[FeedEntry] = []

        def read(self, after: int, limit: int) -> list[FeedEntry]:
            return [e for e in self.entries if e.position > after][:limit]

    class Env:
        commit = 0

        def last_commit(self) -> int:
            return self.commit

        last_commit_now = last_commit

    feed, env = Feed(), Env()
    dispatcher = Dispatcher(feed, env)  # type: ignore[arg-type]
    person = _person()
    box, late = (
        Mailbox(Filter(frozenset({person.resident_code}), frozenset())),
        Mailbox(Filter(frozenset({person.resident_code}), frozenset())),
    )
    assert dispatcher.join(box, 0)
    for position in (1, 2, 3):
        feed.entries.append(FeedEntry(position, notice_pb2.ChangeNotice(record=person), 0))
    env.commit = 1
    dispatcher.dispatch()
    assert not dispatcher.join(late, 2)  # the dispatcher matched past 2 without it: it reads on itself
    assert dispatcher.join(late, 3)
    entries, last = dispatcher.take(box, 1, 10)  # type: ignore[misc]
    assert [e.position for e in entries] == [2, 3] and last == 3
    assert dispatcher.take(late, 3, 10) == ([], 3)
    dispatcher.leave(box)
    assert dispatcher.take(box, 3, 10) is None


def test_writes_made_while_a_push_job_waits_for_the_writer_go_with_that_job(storage: NodeStorage) -> None:
    """While the writer is busy (an intake job), every push write made joins the one job queued behind it:
    one transaction, one fsync; a refused write fails alone; a write made once that job has started goes
    in the next one."""
    env, jobs = storage.env, []
    real_submit = env.submit
    env.submit = lambda fn, urgent=False: jobs.append(urgent) or real_submit(fn, urgent)  # type: ignore[method-assign]
    log, started, gate = PushLog(env), threading.Event(), threading.Event()

    def intake(txn) -> None:
        started.set()
        assert gate.wait(10)

    busy = env.submit(intake)
    assert started.wait(10)

    def count(txn) -> int:
        return env.reserve(txn, Counter.SEARCH)

    def refused(txn) -> None:  # as the stream's writes do, it checks before it writes
        raise Rejected(Problem.NOT_FOUND, "cancelled meanwhile")

    waiting = [log.submit(count), log.submit(refused), log.submit(count), log.submit(count)]
    assert jobs == [False, True]  # the intake's job, then one push job for all four
    gate.set()
    busy.result(10)
    assert [f.result(10) for i, f in enumerate(waiting) if i != 1] == [1, 2, 3]
    with pytest.raises(Rejected, match="cancelled meanwhile"):
        waiting[1].result(10)
    assert log.submit(count).result(10) == 4 and jobs == [False, True, True]
    with env.read() as txn:
        assert env.peek(txn, Counter.SEARCH) == 5  # durable: read back in a new transaction


def test_a_caught_up_stream_is_answered_on_the_event_loop(push: PushService, storage: NodeStorage, clock) -> None:
    """Streams with nothing matched are let through without a worker thread each: the commits they were woken
    by are matched once, by one dispatch they share, and their marks move to its progress; a stream with
    mail is not (its delivery step sends it)."""
    people = [_person("131148") for _ in range(4)]
    _commit(storage, people, clock.now_ms())
    subs = [
        push.subscribe(
            AGENCY, "pension", S.PushTarget(resident_codes=[people[i].resident_code]), S.PUSH_MODE_EVERY_CHANGE
        )
        for i in (0, 1)
    ]
    streams = [push.open(AGENCY, s.subscription_id) for s in subs]
    for stream in streams:
        assert _drain(push, stream) == [] and stream.mailbox is not None and stream.mailbox.joined
    calls: list[str] = []

    async def blocking(fn, *args):
        calls.append(fn.__name__)
        return await asyncio.to_thread(fn, *args)

    async def both() -> list[bool]:
        return list(await asyncio.gather(*(push.caught_up(s, blocking) for s in streams)))

    others = _commit(storage, [_person("131016") for _ in range(3)], clock.now_ms())  # matches neither
    assert asyncio.run(both()) == [True, True]
    assert calls == ["dispatch"]  # one dispatch for both streams
    assert [s.scan for s in streams] == [others[-1]] * 2
    assert asyncio.run(both()) == [True, True] and calls == ["dispatch"]  # nothing new: no thread at all
    moved = _commit(storage, [_changed(people[0], R.CHANGE_REASON_RELOCATION)], clock.now_ms())
    assert asyncio.run(both()) == [False, True]  # the first has mail
    assert streams[0].scan == others[-1] and streams[1].scan == moved[-1]
    assert [r.position for m in _drain(push, streams[0]) for r in m.records] == moved


def test_an_open_stream_follows_the_legal_tables_held_now(storage: NodeStorage, clock) -> None:
    """A row narrowed by a new directory version narrows what an open stream sends next; a row withdrawn ends
    the stream (PERMISSION_DENIED) before anything more is provided."""
    rows = [TableRow(CorporateNumber.parse(AGENCY.code), "pension", "年金", frozenset(FIELD_GROUPS) - {"my_number"})]
    push = PushService(storage, lambda: LegalTables.of(rows), Wakeup(), clock)
    person = _person("131148")
    _commit(storage, [person], clock.now_ms())
    target = S.PushTarget(resident_codes=[person.resident_code])
    stream = push.open(AGENCY, push.subscribe(AGENCY, "pension", target, S.PUSH_MODE_EVERY_CHANGE).subscription_id)
    _commit(storage, [_changed(person, R.CHANGE_REASON_RELOCATION)], clock.now_ms())
    (first,) = _drain(push, stream)
    assert first.records[0].record.name.kanji == person.name.kanji
    rows[0] = TableRow(CorporateNumber.parse(AGENCY.code), "pension", "年金", frozenset({"resident_code"}))
    _commit(storage, [_changed(person, R.CHANGE_REASON_RELOCATION)], clock.now_ms())
    (narrowed,) = _drain(push, stream)
    pushed = narrowed.records[0].record
    assert pushed.resident_code == person.resident_code and not pushed.name.kanji and not pushed.HasField("address")
    rows.clear()
    _commit(storage, [_changed(person, R.CHANGE_REASON_DEATH)], clock.now_ms())
    before = storage.provisions.count()
    with pytest.raises(Rejected) as withdrawn:
        push.deliver_now(stream)
    assert withdrawn.value.problem is Problem.DENIED and "no row" in str(withdrawn.value)
    assert storage.provisions.count() == before == 2  # the two messages before, nothing since

    async def blocking(fn, *args):
        return await asyncio.to_thread(fn, *args)

    with pytest.raises(Rejected) as idle:  # an idle stream, let through on the event loop, ends as well
        asyncio.run(push.caught_up(stream, blocking))
    assert idle.value.problem is Problem.DENIED


def test_a_row_naming_residents_by_agency_identifier_is_pushed_them_and_never_the_numbers(
    storage: NodeStorage, clock
) -> None:
    """機関別符号 in push notices: a pseudonymous row subscribes by municipality (never by 住民票コード, which
    its agency does not hold), and each pushed record carries the agency's identifier of its resident —
    the one a lookup answers — and neither number; another row's identical fields are not confused with it."""
    import hashlib
    import hmac

    from jukinet.domain.legal import Identifier
    from jukinet.server.national.agency_identifiers import AgencyIdentifiers

    identifiers = AgencyIdentifiers(
        storage, lambda inputs: [hmac.new(b"k" * 32, m, hashlib.sha256).digest() for m in inputs]
    )
    fields = frozenset(FIELD_GROUPS)
    rows = [
        TableRow(CorporateNumber.parse(AGENCY.code), "pension", "年金", fields),
        TableRow(
            CorporateNumber.parse(OTHER.code), "insurance", "保険", fields, identifier=Identifier.AGENCY_IDENTIFIER
        ),
    ]
    push = PushService(storage, lambda: LegalTables.of(rows), Wakeup(), clock, identifiers=identifiers)
    person = _person("131148")
    _commit(storage, [person], clock.now_ms())
    with pytest.raises(Rejected) as refused:
        push.subscribe(
            OTHER, "insurance", S.PushTarget(resident_codes=[person.resident_code]), S.PUSH_MODE_EVERY_CHANGE
        )
    assert refused.value.problem is Problem.DENIED and "by municipality" in str(refused.value)
    place = S.PushTarget(municipality_codes=["131148"])
    streams = [
        push.open(a, push.subscribe(a, b, place, S.PUSH_MODE_EVERY_CHANGE).subscription_id)
        for a, b in ((AGENCY, "pension"), (OTHER, "insurance"))
    ]
    moved = _commit(storage, [_changed(person, R.CHANGE_REASON_RELOCATION)], clock.now_ms())
    (plain,), (named,) = (_drain(push, s) for s in streams)
    assert plain.records[0].record.resident_code == person.resident_code and not plain.records[0].agency_identifier
    pushed = named.records[0]
    assert pushed.position == moved[0] and pushed.record.name == person.name
    assert pushed.record.resident_code == pushed.record.my_number == ""
    assert pushed.agency_identifier == identifiers.for_codes(OTHER, [person.resident_code])[person.resident_code]
    assert identifiers.resolve(OTHER, pushed.agency_identifier) == person.resident_code
    # A subscription listing codes, made while the row named residents by code, ends once the row names them by
    # identifier: it would otherwise pair each code the agency listed with its identifier.
    listed = push.subscribe(
        AGENCY, "pension", S.PushTarget(resident_codes=[person.resident_code]), S.PUSH_MODE_EVERY_CHANGE
    )
    stream = push.open(AGENCY, listed.subscription_id)
    rows[0] = TableRow(
        CorporateNumber.parse(AGENCY.code), "pension", "年金", fields, identifier=Identifier.AGENCY_IDENTIFIER
    )
    _commit(storage, [_changed(person, R.CHANGE_REASON_RELOCATION)], clock.now_ms())
    for attempt in (lambda: push.deliver_now(stream), lambda: push.open(AGENCY, listed.subscription_id)):
        with pytest.raises(Rejected) as ended:
            attempt()
        assert ended.value.problem is Problem.DENIED and "by municipality" in str(ended.value)


def test_a_stream_joining_after_the_last_one_left_gets_what_was_committed_before_it_joined(
    push: PushService, storage: NodeStorage, clock
) -> None:
    """Stream B reads the feed to its end; meanwhile a commit lands, stream A (the only member) takes it and
    leaves; B then joins at its own, older mark: the dispatcher matches from there — B is not taken for
    caught up on the strength of A's reading."""
    _commit(storage, [_person("131148") for _ in range(3)], clock.now_ms())
    place = S.PushTarget(municipality_codes=["131148"])
    a_sub, b_sub = (push.subscribe(AGENCY, "pension", place, S.PUSH_MODE_EVERY_CHANGE) for _ in range(2))
    a = push.open(AGENCY, a_sub.subscription_id)
    assert _drain(push, a) == [] and a.mailbox is not None and a.mailbox.joined
    b = push.open(AGENCY, b_sub.subscription_id)
    real, new = push._feed.read, []

    def read(after: int, limit: int) -> list:
        out = real(after, limit)
        if not out and not new and threading.current_thread().name == "b":  # B found the feed's end
            new.extend(_commit(storage, [_person("131148")], clock.now_ms()))
            assert [r.position for m in _drain(push, a) for r in m.records] == new
            push.close(a)  # the last member leaves
        return out

    push._feed.read = read  # type: ignore[method-assign]
    reader = threading.Thread(target=_drain, args=(push, b), name="b")
    reader.start()
    reader.join(10)
    assert b.mailbox is not None and b.mailbox.joined and new

    async def blocking(fn, *args):
        return await asyncio.to_thread(fn, *args)

    assert asyncio.run(push.caught_up(b, blocking)) is False  # it has mail: what A took before B joined
    assert [r.position for m in _drain(push, b) for r in m.records] == new
