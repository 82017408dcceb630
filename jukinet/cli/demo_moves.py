"""The numbers and moves parts of ``jukinet demo``: a birth gets a designated 住民票コード and a My Number
from the national server (and a clerk cannot reuse another resident's numbers); then a resident of 中野区
moves to 横浜市西区 (another prefecture) with their My Number card and PIN (特例転入), the 転入通知 closes the
loop at 中野区, and the national server's owner of the record changes."""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from jukinet.cli.views import describe
from jukinet.clients import TerminalClient, present_card
from jukinet.clients.agency import AgencyClient
from jukinet.devnet.provision import Network
from jukinet.devnet.resident_cards import set_up_resident_card
from jukinet.domain.synthetic import synthetic_resident
from jukinet.hsm import TokenWorker
from jukinet.v1 import identity_pb2

R = identity_pb2
RESIDENT_PIN = "2468"
T = TypeVar("T")


def _date(day: datetime.date) -> R.Date:
    return R.Date(year=day.year, month=day.month, day=day.day)


def _until(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """``probe()`` until it answers (a value, not None, not a refusal); the demo waits on its network."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
            if found is not None:
                return found
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def numbers(clerk: TerminalClient, other: identity_pb2.IdentityRecord, say: Callable[[str], None]) -> R.IdentityRecord:
    """A birth at 中野区 numbered by the national server; then the two attacks of the issue, refused.
    ``other``: a resident of another municipality (千代田区)."""
    rng = random.Random(11)
    birth = synthetic_resident(rng, "131148", R.CHANGE_REASON_BIRTH)  # 住民票コード and 個人番号 left empty
    stored = clerk.record_change(birth).record
    say(f"   出生 at cs:131148: 住民票コード {stored.resident_code} from the block the national server designated to")
    say(f"   this CS; 個人番号 {stored.my_number} made in the national token from that code (its key never leaves)")
    for what, change in (
        ("with 千代田区 resident's My Number", lambda r: setattr(r, "my_number", other.my_number)),
        ("reusing 千代田区 resident's 住民票コード", lambda r: setattr(r, "resident_code", other.resident_code)),
    ):
        impostor = synthetic_resident(rng, "131148", R.CHANGE_REASON_MOVE_IN)
        change(impostor)
        try:
            clerk.record_change(impostor)
            say(f"   UNEXPECTED: a new resident {what} was stored")
        except grpc.RpcError as exc:
            say(f"   a new resident {what}: {exc.code().name}: {exc.details()[:110]}")
    return stored


def move(
    net: Network,
    reader: TokenWorker,
    old: TerminalClient,
    new: TerminalClient,
    agency: AgencyClient,
    business: str,
    mover: identity_pb2.IdentityRecord,
    say: Callable[[str], None],
) -> int:
    """``mover`` (a resident of 中野区) moves to 横浜市西区 with card and PIN. ``old``/``new``: the two CS
    nodes' site terminals with an operator holding register-residents and manage-cards. 0 if all went as told."""
    card = set_up_resident_card(reader, net, old, mover, RESIDENT_PIN)
    say(f"   cs:131148: My Number card {card.card_serial} set up for {mover.name.kanji} (two keys made in the card)")
    today = datetime.date.today()
    out = old.move_out([mover.resident_code], "141038", _date(today), "西区みなとみらい二丁目")
    say(f"   転出 at cs:131148: 除票 recorded, grant {out.grant_id} signed by its token; the 転出証明書情報 (with the")
    say("   household items, which never go up to the prefecture or national servers) queued for cs:141038")

    def present(binding: bytes):
        with card.card(reader).unlock(RESIDENT_PIN) as unlocked:  # the resident types the PIN at the counter
            return present_card(unlocked, "special-move-in", "cs:141038", binding)

    moved = _until(
        "the 転出証明書情報 at cs:141038",
        lambda: new.move_in(out.grant_id, _date(today), "西区みなとみらい二丁目", [mover.resident_code], present),
    )
    record = moved.records[0]
    say(f"   特例転入 at cs:141038 with the card and PIN: {describe(record)}")
    closed = _until(
        "the 転入通知 at cs:131148",
        lambda: (
            ((r := old.resident(mover.resident_code)).change_reason == R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED and r)
            or None
        ),
    )
    say(f"   転入通知 back at cs:131148: the 除票 closed ({describe(closed)})")
    national = _until(
        "the new owner at the national server",
        lambda: (
            (
                (r := agency.by_resident_code(business, mover.resident_code).record).address.municipality_code
                == "141038"
                and r
            )
            or None
        ),
    )
    say(f"   national server: the record now belongs to 141038 ({describe(national)}); the late 転出確定 from")
    say("   131148 is kept as history only, and 131148 can no longer change this resident")
    return 0
