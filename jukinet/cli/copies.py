"""``jukinet copies request|issuances`` and ``jukinet dv register|list|remove``: 住民票の写しの広域交付 at a
counter, and the DV support measures that refuse one.

Each uses the operator session ``jukinet operator login`` left at the node's site terminal: the
requesting CS's for ``copies request`` (role issue-copies), the home CS's for the rest (answer-disclosure,
manage-dv-measures). ``copies request`` also reads the resident's card (in development a SoftHSM token of
the network, ``state/resident-cards/<serial>/``) with the resident's PIN, which never is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jukinet.cli.operators import session_terminal
from jukinet.cli.pins import PinSource
from jukinet.clients.copies import CopyClient, copy_request, present_for_copy
from jukinet.devnet.provision import Network, load_network
from jukinet.devnet.resident_cards import resident_card_dir
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.hsm import TokenWorker, find_softhsm_module
from jukinet.hsm.resident_card import ResidentCard
from jukinet.v1 import copies_pb2, identity_pb2

_SEX = {identity_pb2.SEX_MALE: "男", identity_pb2.SEX_FEMALE: "女"}


def _client(net: Network, node: str) -> CopyClient:
    return CopyClient(session_terminal(net, node))


def _card_label(net: Network, card_serial: str) -> str:
    path = resident_card_dir(net, card_serial) / "card.label"
    if not path.exists():
        raise Rejected(Problem.NOT_FOUND, f"no resident card {card_serial} was issued in {net.state}")
    return path.read_text().strip()


def request_copy(
    state: Path,
    node: str,
    home: str,
    card_serial: str,
    pin: PinSource,
    resident_code: str = "",
    with_resident_code: bool = False,
    with_my_number: bool = False,
) -> int:
    """At ``node``'s counter: the resident's card (PIN) is presented for a copy from ``home``; prints the copy
    the requesting CS verified."""
    net = load_network(state)
    raw = copy_request(NodeId.parse(node), NodeId.parse(home), resident_code,
                       include_resident_code=with_resident_code, include_my_number=with_my_number)  # fmt: skip
    reader = TokenWorker(find_softhsm_module(), net.softhsm.conf_path)
    try:
        with ResidentCard(reader, _card_label(net, card_serial)).unlock(pin.read("resident's card PIN: ")) as card:
            presentation = present_for_copy(card, raw)
    finally:
        reader.close()
    answer = _client(net, node).request_copy(raw, presentation)
    for line in copy_lines(answer.certified_copy):
        print(line)
    return 0


def copy_lines(copy: copies_pb2.CertifiedCopy) -> list[str]:
    """A copy as printed at the counter."""
    born = f"{copy.birth_date.year:04d}-{copy.birth_date.month:02d}-{copy.birth_date.day:02d}"
    lines = [
        f"住民票の写し (広域交付) {copy.issuer} #{copy.serial}, issued to {copy.requesting_cs} at "
        f"{copy.issued_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC; signature verified",
        f"  氏名 {copy.name.kanji} ({copy.name.kana})  生年月日 {born}  性別 {_SEX.get(copy.sex, '-')}",
        f"  住所 {copy.address.municipality_code} {copy.address.text}",
        f"  世帯主 {copy.head_of_household or '-'}  続柄 {copy.relationship or '-'}",
    ]
    if copy.resident_code:
        lines.append(f"  住民票コード {copy.resident_code}")
    if copy.my_number:
        lines.append(f"  個人番号 {copy.my_number}")
    return lines


def list_issuances(state: Path, node: str, resident_code: str) -> int:
    issued = _client(load_network(state), node).issuances(resident_code, limit=1000)
    for i in issued:
        items = ", ".join(n for n, on in (("住民票コード", i.resident_code_included),
                                          ("個人番号", i.my_number_included)) if on)  # fmt: skip
        print(f"#{i.serial}  {i.issued_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC  to {i.requesting_cs}"
              + (f"  with {items}" if items else ""))  # fmt: skip
    print(f"{len(issued)} copies issued of {resident_code}")
    return 0


def register_measure(state: Path, node: str, resident_code: str, municipalities: Sequence[str]) -> int:
    measure = _client(load_network(state), node).register_dv_measure(resident_code, municipalities)
    print(f"DV support measure #{measure.measure_id} registered for {resident_code}: {_scope(measure)}")
    return 0


def list_measures(state: Path, node: str, resident_code: str) -> int:
    measures = _client(load_network(state), node).dv_measures(resident_code)
    for m in measures:
        print(f"#{m.measure_id}  {_scope(m)}  (by {m.registered_by}, {m.registered_at.ToDatetime():%Y-%m-%d} UTC)")
    print(f"{len(measures)} DV support measure(s) for {resident_code}")
    return 0


def remove_measure(state: Path, node: str, resident_code: str, measure_id: int) -> int:
    measure = _client(load_network(state), node).remove_dv_measure(resident_code, measure_id)
    print(f"DV support measure #{measure.measure_id} of {resident_code} removed ({_scope(measure)})")
    return 0


def _scope(measure: copies_pb2.DvMeasure) -> str:
    if measure.scope == copies_pb2.DV_SCOPE_ALL_REQUESTS:
        return "refuses every 広域交付 request"
    return "refuses 広域交付 requests made at " + ", ".join(measure.municipalities)
