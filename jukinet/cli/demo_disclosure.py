"""The 開示 part of ``jukinet demo``: a resident of 中野区 whom the pension service looked up, and who got a
広域交付 copy at 千代田区's counter, lists both with their own My Number card through the residents' portal;
their client verifies every entry against the node's signed tree head before it shows it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import grpc
from cryptography import x509

from jukinet.clients import AgencyClient, TerminalClient
from jukinet.clients.copies import CopyClient, copy_request, present_for_copy
from jukinet.clients.disclosure import DisclosureClient, DisclosureVerifier, SeenHeads, Verified, entry_lines
from jukinet.devnet.access import portal_channel
from jukinet.devnet.provision import Network
from jukinet.devnet.resident_cards import ResidentCardKit, set_up_resident_card
from jukinet.domain.disclosure import COPY_ISSUANCE_LOG, PROVISION_LOG
from jukinet.domain.synthetic import synthetic_resident
from jukinet.hsm import TokenWorker
from jukinet.pki.layout import ca_cert_path

RESIDENT_PIN = "8642"
WAIT_S = 30.0


def _listing(
    net: Network, reader: TokenWorker, card: ResidentCardKit, node: str, log: str, count: int
) -> list[Verified] | None:
    """The card holder's verified listing at ``node`` once it shows ``count`` entries covered by a signed
    head (the national server learns of the card from the CS's card event; heads are sealed each second)."""
    node_ca = x509.load_pem_x509_certificate(ca_cert_path(net.pki_dir, "node").read_bytes())
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        channel = portal_channel(net, node)
        try:
            client = DisclosureClient(channel, DisclosureVerifier(node_ca), SeenHeads(net.state / "demo-seen.json"))
            with card.card(reader).unlock(RESIDENT_PIN) as unlocked:
                pages = list(client.mine(unlocked, card.resident_code, node, log))
            if sum(len(p.entries) for p in pages) >= count and not pages[-1].newer_than_tree_head:
                return pages
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise
        finally:
            channel.close()
        time.sleep(1.0)
    return None


def disclosure(
    net: Network,
    reader: TokenWorker,
    home: TerminalClient,
    counter: TerminalClient,
    agency: AgencyClient,
    business: str,
    say: Callable[[str], None],
) -> int:
    """``home``/``counter``: 中野区's and 千代田区's terminals with operators holding manage-cards and
    issue-copies. 0 if all went as told."""
    home_id, counter_id = net.topology.municipalities[0].node_id, net.topology.municipalities[1].node_id
    resident = home.record_change(synthetic_resident(random.Random(9), home_id.code)).record
    card = set_up_resident_card(reader, net, home, resident, RESIDENT_PIN)
    say(f"   {home_id}: {resident.name.kanji} registered, card {card.card_serial} handed over")
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            provided = agency.by_resident_code(business, resident.resident_code)
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.3)  # the record is on its way to the national server
    say(f"   the pension service looked them up: provision #{provided.provision_id}")
    request = copy_request(counter_id, home_id, resident.resident_code)
    with card.card(reader).unlock(RESIDENT_PIN) as unlocked:
        copy = CopyClient(counter).request_copy(request, present_for_copy(unlocked, request)).certified_copy
    say(f"   {counter_id} got copy {home_id}#{copy.serial} with the resident's card")
    for node, log, what in (("national", PROVISION_LOG, "provisions"), (str(home_id), COPY_ISSUANCE_LOG, "copies")):
        pages = _listing(net, reader, card, node, log, 1)
        if pages is None:
            say(f"   UNEXPECTED: no verified listing of {what} at {node} within {WAIT_S:.0f} s")
            return 1
        say(f"   the resident's card through portal:myna → {node} ({what}), verified by their client:")
        for line in entry_lines(pages):
            say("     " + line)
    return 0
