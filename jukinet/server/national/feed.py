"""The national change feed as push delivery reads it: decoded entries shared by every stream (a bounded
cache, :class:`FeedReader`), and a dispatcher that matches each new entry once against the targets of the
streams that keep up (:class:`Dispatcher`).

Without the dispatcher every stream looked at every entry: a hundred subscriptions, each to a hundredth of
the changed residents, made a hundred passes over each commit. The dispatcher keeps an index from
住民票コード and municipality to the streams that target them; whichever stream comes first after a
commit reads the new entries once, looks each one up in the index, and appends it to the mailbox of each
stream it matches. A stream takes its mail (and how far the dispatcher read, so a quiet stream's cursor can
follow). A stream joins only once it has read to the feed's end itself, from its durable cursor; one that
falls behind (its mailbox past :data:`PUSH_MAILBOX_ENTRIES`: a slow or absent agency, a full window) is
let go and reads the feed itself again until it catches up. So nothing is skipped and no mailbox grows
without bound; the feed is read, never copied per subscriber.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from jukinet.domain.legal import TableRow
from jukinet.domain.limits import FEED_CACHE_ENTRIES, PUSH_MAILBOX_ENTRIES, PUSH_SCAN
from jukinet.domain.push import Filter, Key
from jukinet.storage import Environment, NodeStorage
from jukinet.storage.layout import Db, from_u64, u64
from jukinet.v1 import identity_pb2, notice_pb2


@dataclass
class FeedEntry:
    """A decoded feed entry, shared by every stream that reads it (through :class:`FeedReader`)."""

    position: int
    notice: notice_pb2.ChangeNotice
    committed_ms: int
    redacted: dict[tuple[frozenset[str], bool], identity_pb2.IdentityRecord] = field(default_factory=dict)
    key: Key = field(init=False)  # what filters look at, read once

    def __post_init__(self) -> None:
        self.key = Key.of(self.notice)

    def for_row(self, row: TableRow) -> identity_pb2.IdentityRecord:
        """The record redacted to ``row``'s fields (computed once per field set, then shared)."""
        key = (row.fields, row.pseudonymous)  # a pseudonymous row drops the numbers whatever its fields
        record = self.redacted.get(key)
        if record is None:
            record = self.redacted[key] = row.redact(self.notice.record)
        return record


class FeedReader:
    """Reads the national change feed for every stream, sharing decoded entries: the latest ``capacity``
    positions are kept in order (the feed's positions are contiguous), so streams that keep up read a
    slice of decoded entries; one that lags behind the cache reads the store directly. New entries are
    decoded once: one stream at a time extends the cache, and the streams waiting for it then find the
    entries there (a hundred streams woken by one commit would otherwise each decode all of it)."""

    def __init__(self, storage: NodeStorage, capacity: int = FEED_CACHE_ENTRIES) -> None:
        self._storage = storage
        self._capacity = capacity
        self._lock = threading.Lock()  # the cache (held briefly, never over a read of the store)
        self._loading = threading.Lock()  # one stream extends the cache at a time
        self._base = 1  # the position of _entries[0]
        self._entries: list[FeedEntry] = []

    def read(self, after: int, limit: int) -> list[FeedEntry]:
        """Up to ``limit`` entries after position ``after``, in order."""
        out, elsewhere = self._cached(after, limit)
        if len(out) == limit:
            return out
        if elsewhere:  # behind the cache (or ahead of it after a gap): straight from the store
            return self._load(after, limit)
        with self._loading:
            more, elsewhere = self._cached(after + len(out), limit - len(out))  # what another stream loaded
            out += more
            if len(out) == limit:
                return out
            fresh = self._load(after + len(out), limit - len(out))
            if not elsewhere:
                self._extend(fresh)
        return out + fresh

    def _cached(self, after: int, limit: int) -> tuple[list[FeedEntry], bool]:
        """The cached entries after ``after`` (at most ``limit``), and whether ``after`` is outside the
        cache (not at or before its end)."""
        with self._lock:
            start = after + 1 - self._base
            if 0 <= start < len(self._entries):
                return self._entries[start : start + limit], False
            return [], not (start == len(self._entries) or not self._entries)

    def _extend(self, fresh: list[FeedEntry]) -> None:
        with self._lock:
            if fresh and self._entries and fresh[0].position == self._base + len(self._entries):
                self._entries.extend(fresh)
                if len(self._entries) > self._capacity:
                    drop = len(self._entries) - self._capacity
                    del self._entries[:drop]
                    self._base += drop
            elif fresh and not self._entries:
                self._entries, self._base = list(fresh), fresh[0].position

    def _load(self, after: int, limit: int) -> list[FeedEntry]:
        storage = self._storage
        raw: list[tuple[int, bytes]] = []
        with storage.env.read() as txn:
            cursor = txn.cursor(db=storage.env.dbs[Db.HISTORY])
            if cursor.set_range(u64(after + 1)):
                for key, value in cursor:
                    raw.append((from_u64(key), value))
                    if len(raw) >= limit:
                        break
            runs = storage.feed_times.runs(txn, raw[0][0], raw[-1][0]) if raw else []
        out, run = [], 0
        for position, value in raw:
            while run + 1 < len(runs) and runs[run + 1][0] <= position:
                run += 1
            ms = runs[run][1] if runs and runs[run][0] <= position else 0
            out.append(FeedEntry(position, notice_pb2.ChangeNotice.FromString(value), ms))
        return out


@dataclass(eq=False)
class Mailbox:
    """A stream's place at the dispatcher: its filter, the entries matched for it and not yet taken, and how
    far the dispatcher had read when it last matched (``upto``)."""

    filter: Filter
    entries: deque[FeedEntry] = field(default_factory=deque)
    joined: bool = False
    upto: int = 0


class Dispatcher:
    """Matches new feed entries once for every joined stream (see the module docstring). Thread-safe: the
    streams' delivery steps run in worker threads."""

    def __init__(self, feed: FeedReader, env: Environment, capacity: int = PUSH_MAILBOX_ENTRIES) -> None:
        self._feed = feed
        self._env = env
        self._capacity = capacity
        self._lock = threading.Lock()
        self._upto: int | None = None  # the last position matched (None: nobody has joined)
        self._seen_commit = -1  # the store's last commit when the feed was last read
        self._by_code: dict[str, set[Mailbox]] = {}
        self._by_place: dict[str, set[Mailbox]] = {}
        self._members: set[Mailbox] = set()

    def join(self, box: Mailbox, scan: int) -> bool:
        """Take ``box`` in; its stream has read the feed up to ``scan``, which was then the feed's end.
        False when the dispatcher has already matched past ``scan`` without it: the stream reads on."""
        with self._lock:
            if box.joined:
                return True
            if self._upto is None:  # the first member: nothing was matched from its mark yet
                self._upto, self._seen_commit = scan, -1
            elif scan < self._upto:
                return False
            box.entries.clear()
            box.upto, box.joined = scan, True
            for code in box.filter.codes:
                self._by_code.setdefault(code, set()).add(box)
            for place in box.filter.municipalities:
                self._by_place.setdefault(place, set()).add(box)
            self._members.add(box)
            return True

    def leave(self, box: Mailbox) -> None:
        with self._lock:
            self._leave(box)

    def _leave(self, box: Mailbox) -> None:
        if not box.joined:
            return
        box.joined = False
        box.entries.clear()
        self._members.discard(box)
        for index, keys in ((self._by_code, box.filter.codes), (self._by_place, box.filter.municipalities)):
            for key in keys:
                boxes = index.get(key)
                if boxes is not None:
                    boxes.discard(box)
                    if not boxes:
                        del index[key]
        if not self._members:
            self._upto, self._seen_commit = None, -1  # whoever joins next is matched from its own mark

    def take(self, box: Mailbox, after: int, limit: int) -> tuple[list[FeedEntry], int] | None:
        """Up to ``limit`` entries matched for ``box`` after position ``after``, and the last position they
        cover (the dispatcher's progress when none remain); None if ``box`` is not joined (any more)."""
        self.dispatch()
        with self._lock:
            if not box.joined:
                return None
            mail = box.entries
            while mail and mail[0].position <= after:  # read by the stream itself before it joined
                mail.popleft()
            out = [mail.popleft() for _ in range(min(limit, len(mail)))]
            last = out[-1].position if mail else max(box.upto, after)
            return out, last

    def quiet(self, box: Mailbox) -> int | None:
        """Without reading the feed or waiting for the lock: the dispatcher's progress if ``box`` is joined,
        holds no mail and every commit so far is matched (its stream has nothing to send up to there); None
        otherwise (or while a dispatch or a map resize is under way). It never waits: the event loop calls it."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if not box.joined or box.entries or self._seen_commit != self._env.last_commit_now():
                return None
            return box.upto
        finally:
            self._lock.release()

    def dispatch(self) -> None:
        """Match whatever was committed since the last call (whichever stream comes first does it; the
        others wait for it, then find their mail)."""
        with self._lock:
            if not self._members or self._upto is None:
                return
            commit = self._env.last_commit()
            if commit == self._seen_commit:
                return  # nothing written since the feed was last read to its end
            self._seen_commit = commit  # before reading: a commit from now on is read next time
            full: set[Mailbox] = set()
            by_code, by_place = self._by_code, self._by_place
            while entries := self._feed.read(self._upto, PUSH_SCAN):
                for entry in entries:
                    key = entry.key
                    boxes = by_code.get(key.code, ())
                    if key.former_code and key.former_code in by_code:
                        boxes = {*boxes, *by_code[key.former_code]}
                    if key.municipality in by_place:
                        boxes = {*boxes, *by_place[key.municipality]}
                    for box in boxes:
                        if box.filter.matches(key):
                            box.entries.append(entry)
                            if len(box.entries) > self._capacity:
                                full.add(box)
                self._upto = entries[-1].position
                for box in full:  # falls behind: its stream reads the feed itself from its own mark
                    self._leave(box)
                full.clear()
                if self._upto is None:
                    return
            for box in self._members:
                box.upto = self._upto
