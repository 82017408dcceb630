"""Push subscriptions (プッシュ型通知), without I/O: what a subscription may ask for, which feed entries it
matches, and the periods of digests and cohorts.

Periods are in Japan time (JST, UTC+9, no daylight saving): a daily digest covers one calendar day
[00:00, 24:00) JST of the national commit time; a monthly cohort covers one calendar month JST. A
person "reaches age N" on the day before their Nth birthday (年齢計算ニ関スル法律: the age increases at the
end of that day), so someone born on the 1st of a month reaches it in the previous month.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter
from typing import TypeVar

from jukinet.domain.codes import LocalGovCode, ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_PUSH_AGE, MAX_TARGET_CODES, MAX_TARGET_MUNICIPALITIES
from jukinet.v1 import identity_pb2, notice_pb2, subscription_pb2

JST = datetime.timezone(datetime.timedelta(hours=9), "JST")
MODES = frozenset(
    {
        subscription_pb2.PUSH_MODE_EVERY_CHANGE,
        subscription_pb2.PUSH_MODE_DAILY_DIGEST,
        subscription_pb2.PUSH_MODE_DEATHS_ONLY,
        subscription_pb2.PUSH_MODE_MONTHLY_COHORT,
    }
)
DEATH = identity_pb2.CHANGE_REASON_DEATH
T = TypeVar("T")
_KEY_CODE, _KEY_FORMER = attrgetter("key.code"), attrgetter("key.former_code")
_KEY_MUNICIPALITY, _KEY_REASON = attrgetter("key.municipality"), attrgetter("key.reason")


def check_target(target: subscription_pb2.PushTarget, mode: int) -> subscription_pb2.PushTarget:
    """The target in canonical form (codes and municipalities sorted, unique); Rejected (INVALID or
    EXHAUSTED) naming what is wrong."""
    if mode not in MODES:
        raise Rejected(Problem.INVALID, f"mode: {mode} is not a push mode (every change, daily digest, deaths, cohort)")
    codes, places = list(target.resident_codes), list(target.municipality_codes)
    if bool(codes) == bool(places):
        raise Rejected(Problem.INVALID, "target: exactly one of resident_codes or municipality_codes")
    if len(codes) > MAX_TARGET_CODES:
        raise Rejected(Problem.EXHAUSTED, f"target: {len(codes)} resident codes; at most {MAX_TARGET_CODES}")
    if len(places) > MAX_TARGET_MUNICIPALITIES:
        raise Rejected(
            Problem.EXHAUSTED, f"target: {len(places)} municipality codes; at most {MAX_TARGET_MUNICIPALITIES}"
        )
    for i, code in enumerate(codes):
        try:
            ResidentCode.parse(code)
        except Rejected as exc:
            raise Rejected(Problem.INVALID, f"target.resident_codes[{i}]: {exc}") from None
    for i, place in enumerate(places):
        try:
            LocalGovCode.parse(place)
        except Rejected as exc:
            raise Rejected(Problem.INVALID, f"target.municipality_codes[{i}]: {exc}") from None
    cohort = mode == subscription_pb2.PUSH_MODE_MONTHLY_COHORT
    if cohort and not 1 <= target.reaching_age <= MAX_PUSH_AGE:
        raise Rejected(Problem.INVALID, f"target.reaching_age: the cohort mode needs an age of 1..{MAX_PUSH_AGE}")
    if not cohort and target.reaching_age:
        raise Rejected(Problem.INVALID, "target.reaching_age: only for the monthly cohort mode")
    return subscription_pb2.PushTarget(
        resident_codes=sorted(set(codes)), municipality_codes=sorted(set(places)), reaching_age=target.reaching_age
    )


@dataclass(frozen=True, slots=True)
class Key:
    """What a filter looks at in a feed entry (read from the notice once, shared by every stream)."""

    code: str
    former_code: str
    municipality: str
    reason: int

    @classmethod
    def of(cls, notice: notice_pb2.ChangeNotice) -> Key:
        r = notice.record
        return cls(r.resident_code, notice.former_resident_code, r.address.municipality_code, r.change_reason)


@dataclass(frozen=True)
class Filter:
    """Which feed entries a subscription is about (matched at delivery time, never copied per subscriber)."""

    codes: frozenset[str]
    municipalities: frozenset[str]
    deaths_only: bool = False

    @classmethod
    def of(cls, subscription: subscription_pb2.Subscription) -> Filter:
        t = subscription.target
        deaths = subscription.mode == subscription_pb2.PUSH_MODE_DEATHS_ONLY
        return cls(frozenset(t.resident_codes), frozenset(t.municipality_codes), deaths)

    def about(self, record: identity_pb2.IdentityRecord, former_code: str = "") -> bool:
        """Whether a record (a notice's, or a resident's state) is one of the targets."""
        if self.codes:
            return record.resident_code in self.codes or (bool(former_code) and former_code in self.codes)
        return record.address.municipality_code in self.municipalities

    def select(self, entries: Sequence[T]) -> list[T]:
        """The entries (anything with a ``key`` :class:`Key`) :meth:`matches` keeps, in order — over a run at
        once: a stream reads thousands of others' changes for each of its own, so the common test (the
        code, or the municipality) is a C-level map over the run, and only entries with a former code (a
        住民票コード変更) are looked at one by one."""
        if self.codes:
            keep = list(map(self.codes.__contains__, map(_KEY_CODE, entries)))
            for i in compress(range(len(entries)), map(bool, map(_KEY_FORMER, entries))):
                keep[i] = keep[i] or _KEY_FORMER(entries[i]) in self.codes
        else:
            keep = list(map(self.municipalities.__contains__, map(_KEY_MUNICIPALITY, entries)))
        chosen = list(compress(entries, keep))
        if self.deaths_only:
            chosen = [e for e in chosen if _KEY_REASON(e) == DEATH]
        return chosen

    def matches(self, key: Key) -> bool:
        """Whether a feed entry (its :class:`Key`) is for this subscription. Runs for every entry a stream
        reads, so it is one or two set lookups."""
        if self.deaths_only and key.reason != DEATH:
            return False
        if self.codes:
            return key.code in self.codes or (key.former_code != "" and key.former_code in self.codes)
        return key.municipality in self.municipalities


def day_of(ms: int) -> datetime.date:
    """The JST calendar day of a Unix time in ms."""
    return datetime.datetime.fromtimestamp(ms / 1000, JST).date()


def day_bounds(day: datetime.date) -> tuple[int, int]:
    """[start, end) of a JST day, Unix ms."""
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=JST)
    return int(start.timestamp() * 1000), int((start + datetime.timedelta(days=1)).timestamp() * 1000)


def month_of(ms: int) -> int:
    """The JST month of a Unix time in ms, as YYYYMM."""
    day = day_of(ms)
    return day.year * 100 + day.month


def month_bounds(month: int) -> tuple[int, int]:
    """[start, end) of a JST month (YYYYMM), Unix ms."""
    year, m = divmod(month, 100)
    start = datetime.datetime(year, m, 1, tzinfo=JST)
    end = datetime.datetime(year + m // 12, m % 12 + 1, 1, tzinfo=JST)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def next_month(month: int) -> int:
    year, m = divmod(month, 100)
    return (year + m // 12) * 100 + m % 12 + 1


def reaching_month(birth: identity_pb2.Date, age: int) -> int | None:
    """The month (YYYYMM) in which someone born on ``birth`` reaches ``age`` (None for an invalid date)."""
    try:
        eve = datetime.date(birth.year, birth.month, birth.day) - datetime.timedelta(days=1)
    except ValueError:
        return None
    return (eve.year + age) * 100 + eve.month


def in_cohort(record: identity_pb2.IdentityRecord, target: Filter, age: int, month: int) -> bool:
    """Whether a resident's record puts them in a cohort: living, a target, reaching ``age`` in ``month``."""
    return (
        record.status == identity_pb2.RECORD_STATUS_ACTIVE
        and target.about(record)
        and reaching_month(record.birth_date, age) == month
    )
