"""The 広域交付 part of ``jukinet demo``: a resident of 中野区 gets a copy of their record at 千代田区's
counter with their My Number card; then a DV support measure refuses the same request."""

from __future__ import annotations

import random
from collections.abc import Callable

import grpc

from jukinet.cli.copies import copy_lines
from jukinet.clients import TerminalClient
from jukinet.clients.copies import CopyClient, copy_request, present_for_copy
from jukinet.devnet.provision import Network
from jukinet.devnet.resident_cards import set_up_resident_card
from jukinet.domain.synthetic import synthetic_resident
from jukinet.hsm import TokenWorker

RESIDENT_PIN = "1357"


def wide_area_copy(
    net: Network, reader: TokenWorker, home: TerminalClient, counter: TerminalClient, say: Callable[[str], None]
) -> int:
    """``home``: the 中野区 CS's terminal, ``counter``: 千代田区's, each with an operator holding the roles
    needed (manage-cards, manage-dv-measures, answer-disclosure; issue-copies). 0 if all went as told."""
    home_id, counter_id = net.topology.municipalities[0].node_id, net.topology.municipalities[1].node_id
    resident = home.record_change(synthetic_resident(random.Random(8), home_id.code)).record
    card = set_up_resident_card(reader, net, home, resident, RESIDENT_PIN)
    say(f"   {home_id}: {resident.name.kanji} registered; My Number card {card.card_serial} set up and handed over")
    request = copy_request(counter_id, home_id, resident.resident_code)
    with card.card(reader).unlock(RESIDENT_PIN) as unlocked:  # the resident enters the PIN at the counter
        presentation = present_for_copy(unlocked, request)
    copy = CopyClient(counter).request_copy(request, presentation).certified_copy
    say(f"   {counter_id} asked {home_id}, which signed the copy with its token; {counter_id} verified it:")
    for line in copy_lines(copy):
        say("   " + line)
    say("   (本籍 and 筆頭者 are never in a 広域交付 copy; 住民票コード and 個人番号 only when expressly requested)")
    measure = CopyClient(home).register_dv_measure(resident.resident_code)
    say(f"   {home_id}: DV support measure #{measure.measure_id} registered for the resident (all requests)")
    request = copy_request(counter_id, home_id, resident.resident_code)
    with card.card(reader).unlock(RESIDENT_PIN) as unlocked:
        presentation = present_for_copy(unlocked, request)
    try:
        CopyClient(counter).request_copy(request, presentation)
        say("   UNEXPECTED: the copy was issued")
        return 1
    except grpc.RpcError as exc:
        say(f"   the same request now: {exc.code().name}: {exc.details()}")
    for issued in CopyClient(home).issuances(resident.resident_code):
        say(f"   {home_id}'s issuance log: copy #{issued.serial} to {issued.requesting_cs} at "
            f"{issued.issued_at.ToDatetime():%H:%M:%S} UTC (the resident can learn when and where)")  # fmt: skip
    return 0
