"""The demo's agency steps of issue 9: a four-item search, a batch query (定期照会) and push notices."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from jukinet.cli.views import describe
from jukinet.clients.agency import AgencyClient, BatchResult
from jukinet.clients.push import PushClient
from jukinet.clients.terminal import TerminalClient
from jukinet.v1 import identity_pb2, provision_pb2
from jukinet.v1 import subscription_pb2 as S

Say = Callable[[str], None]


def _as_typed(kana: str) -> str:
    """The reading as an agency might hold it: hiragana, with an ideographic space where the record has none."""
    hiragana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kana)
    return hiragana.replace(" ", "\u3000")


def four_item_search(client: AgencyClient, business: str, person: identity_pb2.IdentityRecord, say: Say) -> int:
    """Search by reading (typed differently from the record: hiragana, an ideographic space) + birth date +
    sex: the answer names every candidate and how each item matched, never a guess."""
    typed = _as_typed(person.name.kana)
    answer = client.search(business, person.birth_date, person.sex, kana=typed)
    say(f"   kana '{typed}' + born {person.birth_date.year}-{person.birth_date.month:02d}-"
        f"{person.birth_date.day:02d} + sex: {len(answer.candidates)} candidate(s) ({answer.search_id})")  # fmt: skip
    if not answer.candidates:
        say("   UNEXPECTED: the resident was not found")
        return 1
    for c in answer.candidates:
        folds = ", ".join(
            provision_pb2.Normalisation.Name(n).removeprefix("NORMALISATION_").lower() for n in c.kana.normalisations
        )
        kana = provision_pb2.ItemMatch.Name(c.kana.match).removeprefix("ITEM_MATCH_").lower()
        say(f"   candidate provision #{c.provision_id}: {describe(c.record)}; kana {kana} ({folds})")
    return 0


def batch_query(client: AgencyClient, business: str, codes: list[str], say: Say, chunk: int = 200) -> int:
    """定期照会: ``codes`` through one BatchLookup stream in chunks; each chunk's answer in order, a status per
    code (a 除票 with its date and reason), a provision id for every record provided."""
    started = time.monotonic()
    tally: dict[str, int] = {}
    odd: list[BatchResult] = []
    ids: list[int] = []
    answers = 0
    for answer in client.batch_lookup(business, codes, chunk=chunk):
        answers += 1
        for result in answer.results():
            status = provision_pb2.BatchStatus.Name(result.status).removeprefix("BATCH_STATUS_").lower()
            tally[status] = tally.get(status, 0) + 1
            if result.provision_id:
                ids.append(result.provision_id)
            if result.status != provision_pb2.BATCH_STATUS_FOUND:
                odd.append(result)
    elapsed = time.monotonic() - started
    counts = ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))
    say(f"   {len(codes)} codes in {answers} chunks through one stream in {elapsed * 1000:.0f} ms: {counts}")
    if ids:
        say(f"   provisions #{min(ids)}..#{max(ids)}: each record provided is in the provision log before its "
            "chunk's answer leaves (one group commit per chunk)")  # fmt: skip
    for result in odd:
        status = provision_pb2.BatchStatus.Name(result.status).removeprefix("BATCH_STATUS_").lower()
        if result.status == provision_pb2.BATCH_STATUS_REMOVED and result.removal is not None:
            d, why = result.removal.date, identity_pb2.ChangeReason.Name(result.removal.reason)
            say(f"   {result.code}: removed (除票) on {d.year}-{d.month:02d}-{d.day:02d}, "
                f"{why.removeprefix('CHANGE_REASON_').lower()} (provision #{result.provision_id})")  # fmt: skip
        else:
            say(f"   {result.code!r}: {status}")
    if tally.get("removed", 0) < 1 or tally.get("not_found", 0) < 1 or tally.get("invalid", 0) < 1:
        say("   UNEXPECTED: the batch should answer a removed, an unknown and a malformed code")
        return 1
    return 0


def subscribe(push: PushClient, business: str, resident_code: str, say: Say) -> tuple[str, str]:
    """Two subscriptions of the pension service to one resident: every change, and deaths only."""
    every = push.subscribe(business, S.PUSH_MODE_EVERY_CHANGE, resident_codes=[resident_code])
    deaths = push.subscribe(business, S.PUSH_MODE_DEATHS_ONLY, resident_codes=[resident_code])
    say(f"   subscription {every.subscription_id}: every change of {resident_code}, from feed position "
        f"{every.start_position}; {deaths.subscription_id}: deaths only")  # fmt: skip
    return every.subscription_id, deaths.subscription_id


def record_death(clerk: TerminalClient, resident_code: str, say: Say) -> None:
    died = clerk.resident(resident_code)
    died.change_reason = identity_pb2.CHANGE_REASON_DEATH
    stored = clerk.record_change(died).record
    say(f"   死亡 recorded at cs:141038: {describe(stored)}")


def receive(push: PushClient, subscription_id: str, until_reason: int, say: Say, wait_s: float = 30.0) -> int:
    """Read the subscription's stream until a record with ``until_reason`` arrives, acknowledging each message."""
    receiver = push.receive(subscription_id)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            try:
                message = receiver.next(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if message is None:
                say(f"   UNEXPECTED: the stream ended: {receiver.error}")
                return 1
            received_ms = int(time.time() * 1000)
            for r in message.records:
                reason = identity_pb2.ChangeReason.Name(r.record.change_reason).removeprefix("CHANGE_REASON_").lower()
                delay = received_ms - r.committed_at.ToMilliseconds()
                where = r.record.address.municipality_code
                say(f"   {subscription_id} position {r.position}: {reason}, {where} (provision #{r.provision_id}; "
                    f"committed at the national server {delay} ms before it arrived)")  # fmt: skip
            receiver.acknowledge(message.last_position)
            if any(r.record.change_reason == until_reason for r in message.records):
                return 0
        say(f"   UNEXPECTED: no {identity_pb2.ChangeReason.Name(until_reason)} within {wait_s:.0f} s")
        return 1
    finally:
        receiver.close()
