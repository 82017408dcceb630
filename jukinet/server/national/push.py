"""Push notices (プッシュ型通知) at the national server: subscriptions over the change feed, delivered from a
durable cursor, acknowledged by the agency, every pushed record logged as a provision before it leaves.

- **Register** (:meth:`PushService.subscribe`): an agency (its certificate) subscribes for one business
  of its row of the legal table (別表第1; otherwise PERMISSION_DENIED, nothing stored) to a target set (a
  list of 住民票コード, or the residents of some municipalities) in one mode (every change, a daily digest,
  deaths only, the monthly cohort reaching an age). Bounded per agency and per target
  (:mod:`jukinet.domain.limits`). The subscription starts after the feed's end when it is made.
- **Receive** (bidirectional): the first request names the subscription (another agency's is NOT_FOUND),
  every later one acknowledges a feed position. A newer Receive of the same subscription supersedes the
  older one (a half-open connection cannot lock an agency out). Messages are produced from the durable
  cursor: each covers a range of feed positions after the previous message's and carries the matching
  records (redacted to the row's fields) with their positions and national commit times. Before a
  message leaves, one transaction (group commit) appends a provision entry for each of its records
  (``QUERY_KIND_PUSH``, reference = subscription id) and moves the subscription's *delivered* mark. At
  most :data:`PUSH_WINDOW` messages wait for acknowledgement; then the stream waits.
- **Acknowledge**: a position after the cursor and at most the delivered mark moves the cursor there
  (durably); one beyond the delivered mark was never delivered: FAILED_PRECONDITION, the stream ends,
  nothing moves. At or below the cursor: nothing moves (a cursor never goes back). After a disconnect or
  a restart the stream starts again at the cursor: unacknowledged messages come again, with the same
  positions; nothing is skipped.
- **Ingest never waits for a subscriber**: the feed is read, not copied per subscriber; matching happens
  here, at delivery; decoded entries are shared between streams through a bounded cache, and each new
  entry is matched once against the streams that keep up (:mod:`jukinet.server.national.feed`); a
  commit at the intake wakes the streams (:class:`Wakeup`), which otherwise sleep.

Modes: *every change* and *deaths only* (reason 死亡) send matching changes as they come. A *daily digest*
covers one JST day of national commit times: once an entry of a later day is seen (or the day ended
:data:`DIGEST_GRACE_MS` ago), it sends each target resident's latest state of that day once, ordered by
position, in messages of at most :data:`MAX_PUSH_RECORDS` (more than :data:`MAX_DIGEST_RESIDENTS` distinct
residents in a day: the day is sent as several digests, each over a range of it). A *monthly cohort*
sends, once per JST month (from the subscription's month on), the living targets who reach the age that
month, as of a feed snapshot taken when the month's cohort is first computed and stored, so a resend is
the same; it is acknowledged whole, at the snapshot position. Computing it reads the subscription's
codes, or — for a municipality rule — every national record once (no birth-date index yet: linear in
the national store, once per cohort subscription per month).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import lmdb
from google.protobuf import timestamp_pb2

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import LegalTables, TableRow
from jukinet.domain.limits import (
    MAX_DIGEST_RESIDENTS,
    MAX_PUSH_RECORDS,
    MAX_SUBSCRIPTIONS_PER_AGENCY,
    PUSH_READS_PER_STEP,
    PUSH_SCAN,
    PUSH_WINDOW,
)
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.push import Filter, check_target, day_bounds, day_of, in_cohort, month_bounds, month_of
from jukinet.domain.push import next_month as following_month
from jukinet.domain.quoting import quoted
from jukinet.server.audit import Auditor
from jukinet.server.legal_tables import DirectoryTables
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.national.feed import Dispatcher, FeedEntry, FeedReader, Mailbox
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.server.runtime.wakeup import Wakeup
from jukinet.storage import Environment, NodeStorage
from jukinet.storage.layout import Db, queue_position, resident_key
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2, subscription_pb2, subscription_pb2_grpc

S = subscription_pb2
T = TypeVar("T")
DIGEST_GRACE_MS = 5_000  # a day's digest waits this long after midnight for commits stamped before it
PROGRESS_EVERY_S = 10.0  # a stream reading only others' changes says how far it read at most this often
FIRST_REQUEST_S = 10.0  # the first Receive request (naming the subscription) must arrive within this
IDLE_WAIT_S = 5.0  # a stream with nothing to do re-checks this often even without a wakeup (clock-driven modes)


_Write = tuple[Callable[[lmdb.Transaction], Any], Future[Any]]


class PushLog:
    """The writes of every stream (each message's provision entries and delivered mark, each cursor move)
    as one group-commit job: at most one job is queued and not yet started, and it takes every write
    gathered until the moment the writer starts it — so a hundred streams answering the same commit share
    one job and one fsync, and a write made while a job waits behind the intake's goes with that job
    rather than after it."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._queued = False  # a job is queued and has not taken its writes yet

    def submit(self, fn: Callable[[lmdb.Transaction], T]) -> Future[T]:
        """``fn`` runs in a later write transaction; its future resolves once that is durable (with what
        it returned, or the Rejected it raised: a refused write does not undo the others)."""
        future: Future[T] = Future()
        with self._lock:
            self._waiting.append((fn, future))
            if self._queued:
                return future
            self._queued = True
        taken: list[list[_Write]] = []  # the writes this job took, once it first ran

        def write(txn: lmdb.Transaction) -> list[tuple[Any, Rejected | None]]:
            if not taken:  # a re-run (after the map grew) keeps what the first run took
                taken.append(self._take())
            out: list[tuple[Any, Rejected | None]] = []
            for fn, _ in taken[0]:
                try:  # each checks before it writes: a refusal leaves nothing behind
                    out.append((fn(txn), None))
                except Rejected as exc:
                    out.append((None, exc))
            return out

        def done(committed: Future[list[tuple[Any, Rejected | None]]]) -> None:
            batch = taken[0] if taken else self._take()  # a job that failed before it ran fails what waited
            try:
                results = committed.result()
            except BaseException as exc:  # the transaction failed: every write in it
                for _, waiting in batch:
                    waiting.set_exception(exc)
                return
            for (_, waiting), (value, refused) in zip(batch, results, strict=True):
                if refused is not None:
                    waiting.set_exception(refused)
                else:
                    waiting.set_result(value)

        try:
            job = self._env.submit(write, urgent=True)
        except Rejected as exc:  # the storage is closed: nothing waiting will be written
            for _, waiting in self._take():
                waiting.set_exception(exc)
            return future
        job.add_done_callback(done)
        return future

    def _take(self) -> list[_Write]:
        with self._lock:  # from here on, new writes gather for the next job
            batch, self._waiting, self._queued = self._waiting, [], False
            return batch


@dataclass
class Outgoing:
    """A message about to be produced: the entries it provides and the positions it covers."""

    entries: list[FeedEntry]
    first: int
    last: int
    ackable: bool = True  # a cohort part other than the last moves no mark
    period: tuple[int, int] | None = None  # [start, end) ms, digests and cohorts


@dataclass
class Stream:
    """One open Receive of a subscription (in memory; the cursor and delivered mark are durable)."""

    sub: S.Subscription
    row: TableRow
    filter: Filter
    acked: int
    delivered: int
    scan: int  # the last position read (produced into a message, or found to hold nothing for it)
    sent: int = 0  # the last position of the last acknowledgeable message sent (the next one starts after)
    unacked: deque[int] = field(default_factory=deque)  # last positions of messages sent, not acknowledged
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    failure: Rejected | None = None
    loop: asyncio.AbstractEventLoop | None = None
    digest: dict[str, FeedEntry] = field(default_factory=dict)  # the day being gathered: code → latest
    digest_day: tuple[int, int] | None = None
    digest_scan: int = 0
    pending: deque[Outgoing] = field(default_factory=deque)  # parts of a digest or cohort yet to send
    cohort_month: int = 0  # the month whose cohort is in flight (0: none)
    cohort_sent: bool = False  # its last part has left
    mailbox: Mailbox | None = None  # every change / deaths only: its place at the dispatcher

    @property
    def id(self) -> str:
        return self.sub.subscription_id


class PushService:
    """Subscriptions and their delivery (plain object; :class:`SubscriptionRpc` is its thin servicer)."""

    def __init__(
        self,
        storage: NodeStorage,
        tables: Callable[[], LegalTables],
        committed: Wakeup,
        clock: Clock = SYSTEM_CLOCK,
        feed: FeedReader | None = None,
        identifiers: AgencyIdentifiers | None = None,
    ) -> None:
        """``identifiers``: the national server's 機関別符号 (without them, rows naming residents by agency
        identifier cannot subscribe)."""
        self._storage = storage
        self._identifiers = identifiers
        self._tables = tables  # the current legal tables (of the network directory held now)
        self.committed = committed
        self._clock = clock
        self._feed = feed or FeedReader(storage)
        self._dispatch = Dispatcher(self._feed, storage.env)
        self._log = PushLog(storage.env)
        self._cohort_scan = threading.Semaphore(1)  # one cohort computed at a time: a worker, one long read
        self._dispatching: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._live: dict[str, Stream] = {}
        self._live_lock = threading.Lock()

    # -- registration --------------------------------------------------------------------------

    def subscribe(self, agency: NodeId, business: str, target: S.PushTarget, mode: int) -> S.Subscription:
        self._row(agency, business)  # who asks is checked before what is asked
        canonical = check_target(target, mode)
        self._row(agency, business, canonical)
        sub = S.Subscription(agency=str(agency), business_code=business, target=canonical, mode=mode)
        sub.created_at.FromMilliseconds(self._clock.now_ms())

        def store(txn: lmdb.Transaction) -> S.Subscription:
            held = self._storage.subscriptions.of_agency(txn, str(agency))
            if len(held) >= MAX_SUBSCRIPTIONS_PER_AGENCY:
                raise Rejected(
                    Problem.EXHAUSTED,
                    f"{agency} holds {len(held)} subscriptions; at most {MAX_SUBSCRIPTIONS_PER_AGENCY}: cancel one",
                )
            sub.subscription_id = self._storage.subscriptions.next_id(txn)
            start = self._storage.history.next_position(txn) - 1  # from now on
            sub.start_position = sub.cursor = sub.delivered = start
            self._storage.subscriptions.put(txn, sub)
            return sub

        return self._storage.env.submit(store).result()

    def list(self, agency: NodeId) -> list[S.Subscription]:
        with self._storage.env.read() as txn:
            subs = self._storage.subscriptions
            return [s for i in subs.of_agency(txn, str(agency)) if (s := subs.get(txn, i)) is not None]

    def cancel(self, agency: NodeId, subscription_id: str) -> None:
        def delete(txn: lmdb.Transaction) -> None:
            self._storage.subscriptions.delete(txn, self._own(txn, agency, subscription_id))

        self._storage.env.submit(delete).result()
        with self._live_lock:
            stream = self._live.pop(subscription_id, None)
        if stream is not None:
            self._fail(stream, Rejected(Problem.NOT_FOUND, f"subscription {subscription_id} was cancelled"))

    def _own(self, txn: lmdb.Transaction, agency: NodeId, subscription_id: str) -> S.Subscription:
        sub = self._storage.subscriptions.get(txn, subscription_id)
        if sub is None or sub.agency != str(agency):  # another agency's is as absent as one never made
            raise Rejected(Problem.NOT_FOUND, f"{agency} has no subscription {quoted(subscription_id)}")
        return sub

    def _row(self, agency: NodeId, business: str, target: S.PushTarget | None = None) -> TableRow:
        """The row (agency, business) of the tables held now, for a subscription to ``target``: a row naming
        residents by agency identifier never serves one that lists 住民票コード (its agency holds none; such a
        subscription made before the row changed ends at its next message)."""
        row = self._tables().national(agency.corporate_number, business)
        if row is None:
            raise Rejected(
                Problem.DENIED, f"{agency} has no row in the legal table (別表第1) for business {quoted(business)}"
            )
        if row.pseudonymous and self._identifiers is None:
            raise Rejected(
                Problem.DENIED,
                f"{agency}'s row for business {quoted(business)} names residents by agency identifier, which this "
                "server cannot derive",
            )
        if row.pseudonymous and target is not None and target.resident_codes:
            raise Rejected(
                Problem.DENIED,
                f"{agency}'s business {quoted(business)} names residents by agency identifier, not 住民票コード: it "
                "subscribes by municipality (its notices name each resident by the agency's identifier)",
            )
        return row

    # -- a stream ------------------------------------------------------------------------------

    def open(self, agency: NodeId, subscription_id: str) -> Stream:
        """Start a Receive at the subscription's cursor; an older Receive of it ends (superseded)."""
        with self._storage.env.read() as txn:
            sub = self._own(txn, agency, subscription_id)
        row = self._row(agency, sub.business_code, sub.target)  # the row may have changed since it subscribed
        stream = Stream(sub, row, Filter.of(sub), sub.cursor, sub.delivered, sub.cursor, sent=sub.cursor)
        if sub.mode in (S.PUSH_MODE_EVERY_CHANGE, S.PUSH_MODE_DEATHS_ONLY):
            stream.mailbox = Mailbox(stream.filter)
        with self._live_lock:
            older = self._live.get(subscription_id)
            self._live[subscription_id] = stream
        if older is not None:
            self._fail(older, Rejected(Problem.CONFLICT, f"a newer Receive of {subscription_id} took over"))
        return stream

    def close(self, stream: Stream) -> None:
        if stream.mailbox is not None:
            self._dispatch.leave(stream.mailbox)
        with self._live_lock:
            if self._live.get(stream.id) is stream:
                del self._live[stream.id]

    def _fail(self, stream: Stream, failure: Rejected) -> None:
        stream.failure = failure
        if stream.loop is not None:
            stream.loop.call_soon_threadsafe(stream.woken.set)

    def acknowledge(self, stream: Stream, position: int) -> None:
        """Move the durable cursor to ``position`` and wait until it is durable."""
        ack = self.begin_acknowledge(stream, position)
        if ack is not None:
            self.end_acknowledge(stream, ack)

    def begin_acknowledge(self, stream: Stream, position: int) -> Ack | None:
        """Check an acknowledgement (see the module docstring for what is refused) and queue the cursor's
        move for group commit (None: nothing moves). Cheap: a stream's loop calls it, without a thread."""
        if position > stream.delivered:
            raise Rejected(
                Problem.CONFLICT,
                f"position {position} was never delivered on subscription {stream.id} "
                f"(delivered up to {stream.delivered}); the cursor stays at {stream.acked}",
            )
        cohort = stream.sub.mode == S.PUSH_MODE_MONTHLY_COHORT
        if cohort and position != stream.delivered and position > stream.acked:
            raise Rejected(
                Problem.CONFLICT, f"a cohort is acknowledged whole, at position {stream.delivered}, not {position}"
            )
        completes = bool(cohort and stream.cohort_sent and position == stream.delivered)
        if position <= stream.acked and not completes:
            return None  # a cursor never moves back
        month = stream.cohort_month

        def move(txn: lmdb.Transaction) -> None:
            subs = self._storage.subscriptions
            if subs.get(txn, stream.id) is None:
                raise Rejected(Problem.NOT_FOUND, f"subscription {stream.id} was cancelled")
            acked, delivered = subs.cursor(txn, stream.id)
            subs.set_cursor(txn, stream.id, max(acked, position), delivered)
            if completes:
                stored = subs.cohort(txn, stream.id, month)
                if stored is not None:
                    stored.acknowledged = True
                    subs.put_cohort(txn, stream.id, month, stored)

        return Ack(position, completes, self._log.submit(move))

    def end_acknowledge(self, stream: Stream, ack: Ack) -> None:
        """Once the move is durable: the stream's window opens."""
        ack.moved.result()
        stream.acked = max(stream.acked, ack.position)
        while stream.unacked and stream.unacked[0] <= ack.position:
            stream.unacked.popleft()
        if ack.completes:
            stream.unacked.clear()
            stream.cohort_month, stream.cohort_sent = 0, False

    def produce(self, stream: Stream, progress: bool) -> tuple[Prepared | None, bool]:
        """The stream's next message, its log entry queued (:class:`Prepared`), or None if there is nothing
        to send; and whether more may be ready at once. With ``progress`` a message with no records tells
        a quiet stream's agency how far it has read (so its cursor can follow). The row is the one the
        legal tables hold now: withdrawn, the stream ends (PERMISSION_DENIED); narrowed, so is what it sends."""
        stream.row = self._current_row(stream)
        if stream.pending:
            return self._send(stream, stream.pending.popleft()), True
        mode = stream.sub.mode
        if mode == S.PUSH_MODE_DAILY_DIGEST:
            outgoing = self._digest(stream)
        elif mode == S.PUSH_MODE_MONTHLY_COHORT:
            outgoing = self._cohort(stream)
        else:
            for _ in range(PUSH_READS_PER_STEP):
                outgoing = self._changes(stream)
                if outgoing is None or outgoing.entries:
                    break
                stream.scan = outgoing.last  # nothing for it there
            else:
                return None, True  # a long stretch of others' changes: let other streams run
            if outgoing is None:
                if progress and stream.scan > stream.sent:
                    return self._send(stream, Outgoing([], stream.sent + 1, stream.scan)), False
                return None, False
        if outgoing is None:
            return None, False
        return self._send(stream, outgoing), True

    def _current_row(self, stream: Stream) -> TableRow:
        return self._row(NodeId.parse(stream.sub.agency), stream.sub.business_code, stream.sub.target)

    async def caught_up(self, stream: Stream, blocking: Callable[..., Awaitable[Any]]) -> bool:
        """On the event loop: True when :meth:`produce` would find nothing for ``stream`` — it has joined the
        dispatcher, its mailbox is empty and every commit is matched — and its scan mark is moved as
        :meth:`produce` would have moved it, without a worker thread. New commits are matched first, by one
        dispatch that every stream woken by them shares (a hundred streams each taking a worker thread to
        wait for the same dispatch held up the intake's checks and the streams that had mail)."""
        box = stream.mailbox
        if box is None or not box.joined or stream.pending:
            return False
        self._current_row(stream)  # a row withdrawn meanwhile ends an idle stream too (cheap: a dict)
        upto = self._dispatch.quiet(box)
        if upto is None:
            await self._dispatched(blocking)
            if (upto := self._dispatch.quiet(box)) is None:
                return False
        stream.scan = max(stream.scan, upto)
        return True

    async def _dispatched(self, blocking: Callable[..., Awaitable[Any]]) -> None:
        loop = asyncio.get_running_loop()
        running = self._dispatching.get(loop)
        if running is None or running.done():
            running = self._dispatching[loop] = asyncio.ensure_future(blocking(self._dispatch.dispatch))
        await asyncio.shield(running)

    def _changes(self, stream: Stream) -> Outgoing | None:
        """The matching changes after the stream's scan mark (None: the feed ends there): from its mailbox
        once it has joined the dispatcher, otherwise read from the feed (and it joins at the feed's end)."""
        box = stream.mailbox
        if box is not None and box.joined:
            taken = self._dispatch.take(box, stream.scan, MAX_PUSH_RECORDS)
            if taken is not None:
                matched, last = taken
                return Outgoing(matched, stream.sent + 1, last) if matched or last > stream.scan else None
        entries = self._feed.read(stream.scan, PUSH_SCAN)
        if not entries:
            if box is not None:
                self._dispatch.join(box, stream.scan)
            return None
        matched = stream.filter.select(entries)
        last = entries[-1].position
        if len(matched) > MAX_PUSH_RECORDS:
            matched = matched[:MAX_PUSH_RECORDS]
            last = matched[-1].position
        return Outgoing(matched, stream.sent + 1, last)

    def _digest(self, stream: Stream) -> Outgoing | None:
        now = self._clock.now_ms()
        if stream.digest_day is None:
            stream.digest_scan = stream.scan
        complete = False
        while not complete:
            entries = self._feed.read(stream.digest_scan, PUSH_SCAN)
            if not entries:
                complete = stream.digest_day is not None and now >= stream.digest_day[1] + DIGEST_GRACE_MS
                if not complete:
                    return None
                break
            for entry in entries:
                if stream.digest_day is None:
                    stream.digest_day = day_bounds(day_of(entry.committed_ms or now))
                if entry.committed_ms >= stream.digest_day[1]:
                    complete = True
                    break
                code = entry.key.code
                if stream.filter.matches(entry.key):
                    if code not in stream.digest and len(stream.digest) >= MAX_DIGEST_RESIDENTS:
                        complete = True  # the rest of the day is another digest
                        break
                    stream.digest.pop(code, None)
                    stream.digest[code] = entry
                stream.digest_scan = entry.position
        chosen = sorted(stream.digest.values(), key=lambda e: e.position)
        period, end = stream.digest_day, stream.digest_scan
        stream.digest, stream.digest_day = {}, None
        first = stream.sent + 1
        parts = [chosen[i : i + MAX_PUSH_RECORDS] for i in range(0, len(chosen), MAX_PUSH_RECORDS)] or [[]]
        for i, part in enumerate(parts):
            last = end if i == len(parts) - 1 else part[-1].position
            stream.pending.append(Outgoing(part, first, last, period=period))
            first = last + 1
        return stream.pending.popleft()

    def _cohort(self, stream: Stream) -> Outgoing | None:
        if stream.cohort_month:
            return None  # in flight: wait for its acknowledgement
        now_month = month_of(self._clock.now_ms())
        subs = self._storage.subscriptions
        month = month_of(stream.sub.created_at.ToMilliseconds())
        with self._storage.env.read() as txn:
            while month <= now_month:
                stored = subs.cohort(txn, stream.id, month)
                if stored is None or not stored.acknowledged:
                    break
                month = following_month(month)
            else:
                return None
            cohort = subs.cohort(txn, stream.id, month)
        if cohort is None:
            if not self._cohort_scan.acquire(blocking=False):
                return None  # another cohort is being computed: this stream looks again at its next wake-up
            try:
                cohort = self._take_cohort(stream, month)
            finally:
                self._cohort_scan.release()
        entries = self._entries_at(list(cohort.positions))
        period = month_bounds(month)
        parts = [entries[i : i + MAX_PUSH_RECORDS] for i in range(0, len(entries), MAX_PUSH_RECORDS)] or [[]]
        for i, part in enumerate(parts):  # as of one snapshot: each part names it as its first and last
            final = i == len(parts) - 1
            stream.pending.append(Outgoing(part, cohort.snapshot, cohort.snapshot, ackable=final, period=period))
        stream.cohort_month = month
        return stream.pending.popleft()

    def _take_cohort(self, stream: Stream, month: int) -> S.PushCohort:
        """The month's members as of now, stored (a resend after a restart delivers the same)."""
        storage, target, age = self._storage, stream.filter, stream.sub.target.reaching_age
        positions: list[int] = []
        with storage.env.read() as txn:  # one snapshot: the records and the feed agree
            snapshot = storage.history.next_position(txn) - 1
            if target.codes:
                found = ((c, storage.records.current(txn, c)) for c in sorted(target.codes))
                candidates = ((c, r) for c, r in found if r is not None)
            else:  # every national record once, one at a time (documented: no birth-date index yet)
                cursor = txn.cursor(db=storage.env.dbs[Db.RECORDS])
                parse = identity_pb2.IdentityRecord.FromString
                candidates = ((bytes(k).decode("ascii"), parse(v)) for k, v in cursor)
            for code, record in candidates:
                if in_cohort(record, target, age, month):
                    latest = _latest_position(txn, storage, code)
                    if latest:
                        positions.append(latest)
        cohort = S.PushCohort(snapshot=snapshot, positions=sorted(positions))

        def store(txn: lmdb.Transaction) -> S.PushCohort:
            existing = storage.subscriptions.cohort(txn, stream.id, month)
            if existing is not None:
                return existing
            storage.subscriptions.put_cohort(txn, stream.id, month, cohort)
            return cohort

        return storage.env.submit(store).result()

    def _entries_at(self, positions: list[int]) -> list[FeedEntry]:
        out = []
        for position in positions:
            found = self._feed.read(position - 1, 1)
            if found and found[0].position == position:
                out.append(found[0])
        return out

    def _send(self, stream: Stream, outgoing: Outgoing) -> Prepared:
        """Build the message and queue its log entry (each record a provision, and the delivered mark) for
        group commit; it may leave once :attr:`Prepared.logged` resolves (:meth:`Prepared.finish`)."""
        row, sub = stream.row, stream.sub
        provided_at = timestamp_pb2.Timestamp()
        provided_at.FromMilliseconds(self._clock.now_ms())
        template = admin_pb2.ProvisionEntry(
            agency=sub.agency,
            business_code=row.business,
            query_kind=admin_pb2.QUERY_KIND_PUSH,
            items=row.items(),
            reference=sub.subscription_id,
            provided_at=provided_at,
        )
        codes = [fed.notice.record.resident_code for fed in outgoing.entries]  # whatever the row lets through
        delivered = outgoing.last if outgoing.ackable else 0
        named: dict[str, str] = {}  # 住民票コード → the agency's identifier (a pseudonymous row)
        if row.pseudonymous and codes:
            assert self._identifiers is not None  # _row refuses such a row otherwise
            named = self._identifiers.for_codes(NodeId.parse(sub.agency), codes)

        def log(txn: lmdb.Transaction) -> range:
            subs = self._storage.subscriptions
            if subs.get(txn, stream.id) is None:
                raise Rejected(Problem.NOT_FOUND, f"subscription {stream.id} was cancelled")
            ids = self._storage.provisions.append_provided(txn, template, codes) if codes else range(0)
            acked, stored = subs.cursor(txn, stream.id)
            if delivered > stored:
                subs.set_cursor(txn, stream.id, acked, delivered)
            return ids

        logged = self._log.submit(log)
        stream.scan = max(stream.scan, outgoing.last)
        if outgoing.ackable:
            stream.sent = outgoing.last
        message = S.ReceiveResponse(
            subscription_id=sub.subscription_id, first_position=outgoing.first, last_position=outgoing.last
        )
        add = message.records.add
        for fed in outgoing.entries:
            committed = timestamp_pb2.Timestamp(
                seconds=fed.committed_ms // 1000, nanos=fed.committed_ms % 1000 * 1_000_000
            )
            code = fed.notice.record.resident_code
            add(
                position=fed.position,
                record=fed.for_row(row),
                committed_at=committed,
                agency_identifier=named.get(code, ""),
            )
        if outgoing.period is not None:
            message.period_start.FromMilliseconds(outgoing.period[0])
            message.period_end.FromMilliseconds(outgoing.period[1])
        return Prepared(message, logged, outgoing.ackable, self._clock)

    def deliver_now(self, stream: Stream, progress: bool = False) -> S.ReceiveResponse | None:
        """:meth:`produce` and wait for its log entry: the next message as it would leave (tests, tools)."""
        prepared, _ = self.produce(stream, progress)
        if prepared is None:
            return None
        prepared.logged.result()
        return prepared.finish(stream)


@dataclass(frozen=True)
class Ack:
    position: int
    completes: bool  # the whole cohort in flight
    moved: Future[None]


@dataclass
class Prepared:
    """A message whose provision entries and delivered mark are being committed; it leaves only after."""

    message: S.ReceiveResponse
    logged: Future[range]
    ackable: bool
    clock: Clock

    def finish(self, stream: Stream) -> S.ReceiveResponse:
        """Once logged: the provision ids go in, the stream's delivered mark moves, the message may leave."""
        ids = self.logged.result()
        for pushed, provision_id in zip(self.message.records, ids, strict=True):
            pushed.provision_id = provision_id
        if self.ackable:
            stream.delivered = max(stream.delivered, self.message.last_position)
            stream.unacked.append(self.message.last_position)
            stream.cohort_sent = stream.cohort_month != 0
        self.message.sent_at.FromMilliseconds(self.clock.now_ms())
        return self.message


def _latest_position(txn: lmdb.Transaction, storage: NodeStorage, code: str) -> int:
    """The resident's latest feed position in ``txn`` (0 if none)."""
    prefix = resident_key(code)
    cursor = txn.cursor(db=storage.env.dbs[Db.HISTORY_INDEX])
    if not cursor.set_range(prefix + b"\xff" * 8):
        if not cursor.last():
            return 0
    elif not cursor.prev():
        return 0
    key = bytes(cursor.key())
    return queue_position(key) if key.startswith(prefix) and len(key) == len(prefix) + 8 else 0


async def deliver(
    push: PushService,
    stream: Stream,
    blocking: Callable[..., Awaitable[Any]],
    requests: AsyncIterator[S.ReceiveRequest],
) -> AsyncIterator[S.ReceiveResponse]:
    """The messages of one Receive: produced while the window allows, acknowledgements read beside them.
    A stream with nothing to send sleeps until a commit (or its own acknowledgement) wakes it."""
    stream.loop = asyncio.get_running_loop()
    acks: list[int] = []

    async def read() -> None:
        try:
            async for request in requests:
                if request.WhichOneof("request") != "acknowledge":
                    raise Rejected(Problem.INVALID, "after the first message, a Receive request only acknowledges")
                acks.append(request.acknowledge)
                stream.woken.set()
        except Rejected as exc:
            stream.failure = stream.failure or exc
            stream.woken.set()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass  # the call is ending: the stream's loop ends with it

    moving: deque[tuple[Ack, asyncio.Future[None]]] = deque()  # acknowledgements being made durable

    woken = stream.woken

    def wake(_: object = None) -> None:
        woken.set()

    def take_acks() -> None:
        if not acks:
            return
        queued, acks[:] = list(acks), []
        beyond = [p for p in queued if p > stream.delivered]  # refused, whatever else came with it
        ack = push.begin_acknowledge(stream, beyond[0] if beyond else max(queued))
        if ack is not None:
            moved = asyncio.wrap_future(ack.moved)
            moved.add_done_callback(wake)
            moving.append((ack, moved))

    reader = asyncio.create_task(read())
    last_progress = 0.0
    clock_driven = stream.sub.mode in (S.PUSH_MODE_DAILY_DIGEST, S.PUSH_MODE_MONTHLY_COHORT)
    inflight: deque[tuple[Prepared, asyncio.Future[range]]] = deque()  # being logged, in order
    # One event wakes the loop: every commit at the intake sets it (Wakeup.watch), and so do an
    # acknowledgement read, a failure, and each write of its own that becomes durable. No task is made
    # per wait (a hundred streams woken by every commit made that the event loop's main cost).
    push.committed.watch(woken)
    try:
        while True:
            woken.clear()
            if stream.failure is not None:
                raise stream.failure
            take_acks()
            while moving and moving[0][1].done():
                push.end_acknowledge(stream, moving.popleft()[0])
            while inflight and inflight[0][1].done():
                prepared, logged = inflight.popleft()
                await logged  # raises if it could not be logged: nothing leaves unlogged
                yield prepared.finish(stream)
            if len(stream.unacked) + len(inflight) < PUSH_WINDOW:
                now = stream.loop.time()
                progress = now - last_progress >= PROGRESS_EVERY_S
                if not progress and await push.caught_up(stream, blocking):
                    prepared, more = None, False
                else:
                    prepared, more = await blocking(push.produce, stream, progress)
                if prepared is not None:
                    if not prepared.message.records and not prepared.message.HasField("period_start"):
                        last_progress = now
                    logged = asyncio.wrap_future(prepared.logged)
                    logged.add_done_callback(wake)
                    inflight.append((prepared, logged))
                if more or prepared is not None:
                    continue
                quiet = stream.scan > stream.sent  # read past others' changes: a progress message is due
                timeout = PROGRESS_EVERY_S if quiet else IDLE_WAIT_S if clock_driven else IDLE_WAIT_S * 12
            else:
                timeout = None  # the window is full: an acknowledgement (or a failure) wakes it
            try:
                async with asyncio.timeout(timeout):
                    await woken.wait()
            except TimeoutError:
                pass
    finally:
        push.committed.unwatch(woken)
        reader.cancel()


_PROVIDE = audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY


class SubscriptionRpc(subscription_pb2_grpc.SubscriptionServiceServicer):
    """Agencies only; every refusal (no row in the legal table, another agency's subscription, an
    acknowledgement of what was never sent) is audited and counted as the lookups' are."""

    def __init__(self, push: PushService, auditor: Auditor, blocking: Blocking) -> None:
        self._push = push
        self.auditor = auditor
        self.blocking = blocking
        self.agencies = Kinds.of(NodeKind.AGENCY)

    @guarded("agencies", audit=_PROVIDE)
    def Subscribe(self, request: S.SubscribeRequest, caller: Caller) -> S.SubscribeResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        sub = self._push.subscribe(agency, request.business_code, request.target, request.mode)
        return S.SubscribeResponse(subscription=sub)

    @guarded("agencies", audit=_PROVIDE)
    def ListSubscriptions(self, request: S.ListSubscriptionsRequest, caller: Caller) -> S.ListSubscriptionsResponse:
        return S.ListSubscriptionsResponse(subscriptions=self._push.list(caller.of_kind(NodeKind.AGENCY)[0]))

    @guarded("agencies", audit=_PROVIDE)
    def CancelSubscription(self, request: S.CancelSubscriptionRequest, caller: Caller) -> S.CancelSubscriptionResponse:
        self._push.cancel(caller.of_kind(NodeKind.AGENCY)[0], request.subscription_id)
        return S.CancelSubscriptionResponse()

    @guarded("agencies", audit=_PROVIDE)
    async def Receive(
        self, request_iterator: AsyncIterator[S.ReceiveRequest], context: grpc.aio.ServicerContext, caller: Caller
    ) -> AsyncIterator[S.ReceiveResponse]:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        try:
            async with asyncio.timeout(FIRST_REQUEST_S):  # a stream that never names its subscription ends
                first = await anext(request_iterator, None)
        except TimeoutError:
            raise Rejected(
                Problem.INVALID, f"no Receive request named a subscription within {FIRST_REQUEST_S:g} s"
            ) from None
        if first is None or first.WhichOneof("request") != "subscription_id":
            raise Rejected(Problem.INVALID, "the first Receive request names the subscription (subscription_id)")
        stream = await self.blocking(self._push.open, agency, first.subscription_id)
        try:
            async for message in deliver(self._push, stream, self.blocking, request_iterator):
                yield message
        finally:
            self._push.close(stream)


def subscription_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's push subscriptions (see jukinet.server.assembly.TIERS), under the legal tables
    of the network directory the node holds (reloaded with each new version)."""
    tables = DirectoryTables(parts.directory, parts.clock)
    from jukinet.server.national.provision import agency_identifiers  # the token's key, as the lookups use it

    identifiers = agency_identifiers(parts)
    push = PushService(parts.storage, tables.current, parts.committed, parts.clock, identifiers=identifiers)
    return bind(SubscriptionRpc(push, parts.auditor, parts.blocking))
