"""``jukinet disclosure mine|counter``: 開示 with proofs, printed with what was verified.

``mine`` plays the resident at home: their card (in development a SoftHSM token of the network,
``state/resident-cards/<serial>/``, unlocked with the resident's PIN, never an argument) presented through
the network's residents' portal (``portal:myna``) to the national server (their provisions) or to their
home CS (``--node cs:…``, its 広域交付 copy issuances). ``counter`` is the operator at a CS's counter, with
the session ``jukinet operator login`` left at its site terminal (role disclose-provisions): the
resident's provisions at the national server (asked through the CS) or, with ``--copies``, the CS's own
copy issuances. Both verify every answer against the node CA of the network's PKI and remember the last
tree head seen per node and log in a JSON file (default ``state/disclosure-seen.json``; ``--seen``), so
the next run also proves that log only grew.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from jukinet.cli.copies import _card_label
from jukinet.cli.operators import session_terminal
from jukinet.cli.pins import PinSource
from jukinet.clients.disclosure import DisclosureClient, DisclosureVerifier, SeenHeads, entry_lines
from jukinet.devnet.access import portal_channel
from jukinet.devnet.provision import Network, load_network
from jukinet.domain.disclosure import COPY_ISSUANCE_LOG, PROVISION_LOG
from jukinet.hsm import TokenWorker, find_softhsm_module
from jukinet.hsm.resident_card import ResidentCard
from jukinet.pki.layout import ca_cert_path


def _verifier(net: Network) -> DisclosureVerifier:
    return DisclosureVerifier(x509.load_pem_x509_certificate(ca_cert_path(net.pki_dir, "node").read_bytes()))


def _seen(net: Network, seen: Path | None) -> SeenHeads:
    return SeenHeads(seen or net.state / "disclosure-seen.json")


def _log(node: str) -> str:
    return PROVISION_LOG if node == "national" else COPY_ISSUANCE_LOG


def mine(state: Path, node: str, card_serial: str, resident_code: str, pin: PinSource, seen: Path | None = None) -> int:
    """The card holder's entries of ``node``'s log, through the portal, verified as ``resident_code``'s (the
    holder's own 住民票コード: an answer for anyone else is refused); prints them."""
    net = load_network(state)
    reader = TokenWorker(find_softhsm_module(), net.softhsm.conf_path)
    channel = portal_channel(net, node)
    try:
        client = DisclosureClient(channel, _verifier(net), _seen(net, seen))
        with ResidentCard(reader, _card_label(net, card_serial)).unlock(pin.read("resident's card PIN: ")) as card:
            pages = list(client.mine(card, resident_code, node, _log(node)))
    finally:
        channel.close()
        reader.close()
    _print(resident_code, node, pages)
    return 0


def counter(state: Path, node: str, resident_code: str, copies: bool, seen: Path | None = None) -> int:
    """At ``node``'s counter: the resident's provisions (national) or, with ``copies``, the CS's copy
    issuances, verified; prints them."""
    net = load_network(state)
    terminal = session_terminal(net, node)
    asked = node if copies else "national"
    client = DisclosureClient(terminal.channel, _verifier(net), _seen(net, seen), terminal)
    pages = list(client.for_resident(resident_code, asked, _log(asked)))
    _print(resident_code, asked, pages)
    return 0


def _print(resident_code: str, node: str, pages: list) -> None:
    what = "provisions" if node == "national" else "copies issued by 広域交付"
    entries = sum(len(p.entries) for p in pages)
    print(f"開示: {entries} {what} of {resident_code} at {node}")
    for line in entry_lines(pages):
        print(f"  {line}")
