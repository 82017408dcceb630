"""Moves between municipalities, end to end: a household moves from 中野区 (cs:131148, 東京都) to 横浜市西区
(cs:141038, 神奈川県; 横浜市 itself, 141003, is a designated city whose wards hold the residents) over real
node processes (the prefecture servers of 13 and 14 in one consolidated centre).

The destination CS and the prefecture centre are down when the 転出 is recorded: nothing is lost, each
item is applied once. The household's 世帯主/続柄/本籍/筆頭者 carry marker strings: they reach the new CS
inside the 転出証明書情報, and never the prefecture or national stores, nor any message a CS queued for
its prefecture. Forged 転出証明書情報 (a SimulatedNode plays CS identities) are refused and store nothing.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import start, wait_until
from cryptography.hazmat.primitives.serialization import Encoding
from netutil import AGENCY, BUSINESS, address, agency, designated, link, residents, rpc_error, simulated, terminal

from jukinet.devnet.topology import Topology, pick_free_ports
from jukinet.domain.records import status_for
from jukinet.pki import seal
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Db
from jukinet.v1 import identity_pb2, link_pb2, local_pb2, moves_pb2

OLD, NEW = "cs:131148", "cs:141038"
R = identity_pb2
MARKERS = {
    "head_of_household": "鶫鵺鰯世帯主甲",
    "relationship": "鶫鵺鰯続柄",
    "registered_domicile": "鶫鵺鰯本籍一丁目",
    "head_of_family_register": "鶫鵺鰯筆頭者乙",
}
MARKER_BYTES = [m.encode() for m in MARKERS.values()] + ["鶫鵺鰯".encode()]


def _topology() -> Topology:
    ports = pick_free_ports(4)
    text = f"""
[national]
listen = "127.0.0.1:{ports[0]}"

[[prefecture]]
codes = ["13", "14"]
listen = "127.0.0.1:{ports[1]}"

[[cs]]
municipality = "131148"
listen = "127.0.0.1:{ports[2]}"

[[cs]]
municipality = "141038"
listen = "127.0.0.1:{ports[3]}"

[[agency]]
corporate_number = "{AGENCY}"
name = "pension (test identity)"
"""
    return Topology.parse(text)


@pytest.fixture(scope="module")
def net(tmp_path_factory, softhsm, worker) -> Iterator:
    with start(tmp_path_factory.mktemp("moves"), softhsm, worker, _topology()) as running:
        yield running


def _date(day: datetime.date) -> R.Date:
    return R.Date(year=day.year, month=day.month, day=day.day)


def _today() -> datetime.date:
    return datetime.date.today()


def _household(n: int, municipality: str = "131148") -> list[R.IdentityRecord]:
    return _dated(residents(municipality, n))


def _designated_household(net, cs, n: int) -> list[R.IdentityRecord]:
    """``n`` residents of the simulated CS ``cs`` with codes the national server designated to it and their
    My Numbers: what a genuine CS of that identity would hold (it never registered them anywhere)."""
    return _dated(designated(net, cs, n, R.CHANGE_REASON_MOVE_IN)[1])


def _dated(people: list[R.IdentityRecord]) -> list[R.IdentityRecord]:
    for person in people:
        person.change_date.CopyFrom(R.Date(year=2020, month=4, day=1))
        if person.birth_date.year >= 2020:
            person.birth_date.CopyFrom(R.Date(year=1990, month=5, day=5))
    return people


def _register(net, people) -> None:
    cs = terminal(net, OLD)
    for person in people:
        cs.record_change(person, local_pb2.LocalResidentData(**MARKERS))


def _spec(net, node_id: str):
    return net.network.topology.node(node_id)


def _national_record(net, code: str) -> R.IdentityRecord | None:
    try:
        return agency(net).by_resident_code(BUSINESS, code).record
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return None


def _queued_items(net, node_id: str, destination: str) -> list[bytes]:
    """The serialized LinkItems ``node_id`` holds for ``destination`` (read beside the running node)."""
    storage = NodeStorage.open(net.network.node_dir(_spec(net, node_id)) / "data", readonly=True)
    try:
        with storage.env.read() as txn:
            prefix = destination.encode() + b"\0"
            return [bytes(v) for k, v in txn.cursor(db=storage.env.dbs[Db.QUEUE]) if bytes(k).startswith(prefix)]
    finally:
        storage.close()


def _holds_marker(data: bytes) -> bool:
    return any(marker in data for marker in MARKER_BYTES)


def test_a_household_moves_across_prefectures_with_the_destination_down(net):
    people = _household(3)
    _register(net, people)  # the CS gives each a code from its reserve and the national server's My Number
    codes = [p.resident_code for p in people]
    wait_until(lambda: all(_national_record(net, c) for c in codes), what="the household at the national server")
    centre, new_cs = _spec(net, "pref:13"), _spec(net, NEW)
    net.stop_node(centre)
    net.stop_node(new_cs)

    # 転出 at 中野区 while 横浜市 and the prefecture centre are down.
    today = _today()
    old = terminal(net, OLD)
    moved_out = old.move_out(codes, "141038", _date(today), "西区みなとみらい一丁目")
    assert moved_out.grant_id.startswith(f"{OLD}/")
    assert moved_out.last_sequence - moved_out.first_sequence == 2
    for code in codes:
        record = old.resident(code)
        assert (record.change_reason, record.status) == (R.CHANGE_REASON_MOVE_OUT, R.RECORD_STATUS_REMOVED)
    upward = _queued_items(net, OLD, "pref:13")
    sideways = _queued_items(net, OLD, NEW)
    assert len(sideways) == 1 and _holds_marker(sideways[0])  # the 転出証明書情報 carries the local items
    assert upward and not any(_holds_marker(item) for item in upward)
    assert link(net, OLD, NEW).pending == 1

    # 横浜市西区 comes up: the certificate arrives once.
    net.start_node(new_cs)
    wait_until(lambda: link(net, OLD, NEW).pending == 0, what="the 転出証明書情報 handed over")
    new = terminal(net, NEW)
    moved_in = new.move_in(moved_out.grant_id, _date(today), "西区みなとみらい二丁目")
    assert [r.resident_code for r in moved_in.records] == codes
    for code, person in zip(codes, people, strict=True):
        entry = new.resident_entry(code)
        assert entry.record.my_number == person.my_number and entry.record.name == person.name
        assert entry.record.address.municipality_code == "141038"
        assert entry.record.change_reason == R.CHANGE_REASON_MOVE_IN
        assert entry.local == local_pb2.LocalResidentData(**MARKERS)
    again = rpc_error(new.move_in, moved_out.grant_id, _date(today), "西区", [codes[0]])
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS and codes[0] in again.details()
    upward_new = _queued_items(net, NEW, "pref:14")
    assert len(upward_new) == 3 and not any(_holds_marker(item) for item in upward_new)
    for raw in upward_new:  # each 転入 notice carries the old CS's grant
        notice = link_pb2.LinkItem.FromString(raw).change_notice
        assert notice.move_out_grant.payload == moved_out.grant.payload

    # The 転入通知 closes the move at 中野区 (転出確定), still with the centre down.
    def closed() -> bool:
        return all(old.resident(c).change_reason == R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED for c in codes)

    wait_until(closed, what="転入通知受理 at the old CS")
    assert all(old.resident(c).status == R.RECORD_STATUS_REMOVED for c in codes)
    assert not any(_holds_marker(item) for item in _queued_items(net, OLD, "pref:13"))

    # The centre comes up: ownership moves at the national server; the late removals are history only.
    net.start_node(centre)

    def moved_nationally() -> bool:
        records = [_national_record(net, c) for c in codes]
        return all(r is not None and r.address.municipality_code == "141038" for r in records)

    wait_until(moved_nationally, what="the national records at 141003")
    wait_until(lambda: link(net, OLD, "pref:13").pending == 0, what="the old CS's notices delivered")
    wait_until(lambda: link(net, "pref:13", "national").pending == 0, what="the centre's relays delivered")
    for code in codes:
        record = _national_record(net, code)
        assert record is not None and record.status == R.RECORD_STATUS_ACTIVE
        assert record.change_reason == R.CHANGE_REASON_MOVE_IN

    # Data minimisation: the prefecture and national stores never held the household's local items.
    for node_id in ("pref:13", "national"):
        raw = (net.network.node_dir(_spec(net, node_id)) / "data" / "data.mdb").read_bytes()
        assert not _holds_marker(raw), f"{node_id}'s store holds a local-only item"
    raw_new = (net.network.node_dir(new_cs) / "data" / "data.mdb").read_bytes()
    assert _holds_marker(raw_new)  # the grep finds them where they belong


def test_late_and_unknown_move_ins_are_refused(net):
    today = _today()
    people = _household(2)
    _register(net, people)
    old, new = terminal(net, OLD), terminal(net, NEW)
    planned = today - datetime.timedelta(days=40)
    late = old.move_out([p.resident_code for p in people], "141038", _date(planned))
    wait_until(lambda: link(net, OLD, NEW).pending == 0, what="the 転出証明書情報 handed over")

    err = rpc_error(new.move_in, late.grant_id, _date(today), "西区")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "40 days after the planned move-out date" in err.details() and planned.isoformat() in err.details()
    err = rpc_error(new.move_in, late.grant_id, _date(today - datetime.timedelta(days=15)), "西区")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "within 14 days" in err.details()
    err = rpc_error(new.move_in, f"{OLD}/999999", _date(today), "西区")
    assert err.code() == grpc.StatusCode.NOT_FOUND and "999999" in err.details()
    err = rpc_error(new.move_in, "not a grant", _date(today), "西区")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    for person in people:  # nothing stored at the new CS
        assert rpc_error(new.resident, person.resident_code).code() == grpc.StatusCode.NOT_FOUND
    # Within the limits the same certificate still works: exactly 30 days after the planned date.
    ok = new.move_in(late.grant_id, _date(planned + datetime.timedelta(days=30)), "西区", [people[0].resident_code])
    assert len(ok.records) == 1


def test_move_out_refusals(net):
    today = _today()
    old = terminal(net, OLD)
    person = _household(1)[0]
    _register(net, [person])
    code = person.resident_code
    cases = [
        ((["12345678901"], "141038", _date(today)), grpc.StatusCode.INVALID_ARGUMENT, "resident_codes[0]"),
        (([code], "131148", _date(today)), grpc.StatusCode.INVALID_ARGUMENT, "転居"),
        (([code], "011002", _date(today)), grpc.StatusCode.NOT_FOUND, "no CS of municipality 011002"),
        (([code], "141038", _date(today + datetime.timedelta(days=15))), grpc.StatusCode.INVALID_ARGUMENT, "14 days"),
        (([code, code], "141038", _date(today)), grpc.StatusCode.INVALID_ARGUMENT, "named twice"),
        (([code] * 21, "141038", _date(today)), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 20"),
    ]
    for args, status, words in cases:
        err = rpc_error(old.move_out, *args)
        assert err.code() == status and words in err.details(), (args, err.details())
        assert old.resident(code).status == R.RECORD_STATUS_ACTIVE  # nothing changed
    old.move_out([code], "141038", _date(today))
    err = rpc_error(old.move_out, [code], "141038", _date(today))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "除票" in err.details()


# -- forged 転出証明書情報 ---------------------------------------------------------------------------------


def _certificate(
    origin_node, signer_node, destination: str, people, *, grant_origin: str | None = None, n: int = 7
) -> moves_pb2.MoveOutCertificate:
    origin = grant_origin or origin_node.node_id
    today = _today()
    grant = moves_pb2.MoveOutGrant(
        grant_id=f"{origin}/{n}",
        origin=origin,
        destination=destination,
        resident_codes=[p.resident_code for p in people],
    )
    grant.planned_date.CopyFrom(_date(today))
    certificate = moves_pb2.MoveOutCertificate(grant=seal(origin_node.signer, grant, origin_node.certificate_der))
    certificate.planned_date.CopyFrom(_date(today))
    for person in people:
        person.change_reason = R.CHANGE_REASON_MOVE_OUT
        person.status = status_for(person.change_reason)
        certificate.members.add(record=person, local=local_pb2.LocalResidentData(**MARKERS))
    return certificate


def _item(envelope) -> bytes:
    return link_pb2.LinkItem(move_out_certificate=envelope).SerializeToString()


def test_forged_certificates_are_refused_and_nothing_is_stored(net, tmp_path: Path):
    nakano = simulated(net, [OLD], tmp_path / "nakano")  # a key certified for cs:131148
    chiyoda = simulated(net, ["cs:131016"], tmp_path / "chiyoda")
    at = address(net, NEW)

    def next_position(sender) -> int:  # the real cs:131148 has delivered to cs:141038 already
        inbound = terminal(net, NEW).status(inbound=True).inbound
        return 1 + max(
            (i.last_sequence for i in inbound if (i.sender, i.destination) == (sender.node_id, NEW)), default=0
        )

    def refused(sender, envelope, status: grpc.StatusCode, words: str) -> None:
        first = next_position(sender)
        err = rpc_error(sender.deliver, at, NEW, [sender.batch(NEW, [_item(envelope)], first)])
        assert err.code() == status and words in err.details(), err.details()

    people = _designated_household(net, nakano, 1)
    genuine = _certificate(nakano, nakano, NEW, people, n=70)
    unsigned = seal(nakano.signer, genuine)  # no certificate carried
    refused(nakano, unsigned, grpc.StatusCode.UNAUTHENTICATED, "no signer certificate")
    tampered = seal(nakano.signer, genuine, nakano.certificate_der)
    altered = moves_pb2.MoveOutCertificate.FromString(tampered.payload)
    altered.members[0].record.name.kanji = "偽者"
    tampered.payload = altered.SerializeToString()
    refused(nakano, tampered, grpc.StatusCode.UNAUTHENTICATED, "signature does not verify")
    # Signed by cs:131016 around a grant of cs:131148: not the origin.
    relayed = seal(chiyoda.signer, genuine, chiyoda.certificate_der)
    refused(chiyoda, relayed, grpc.StatusCode.PERMISSION_DENIED, "not by the grant's origin cs:131148")
    # A grant claiming cs:131148's residents, signed by cs:131016.
    claimed = _certificate(chiyoda, chiyoda, NEW, _designated_household(net, nakano, 1), grant_origin=OLD, n=71)
    refused(chiyoda, seal(chiyoda.signer, claimed, chiyoda.certificate_der), grpc.StatusCode.PERMISSION_DENIED,
            "but was signed by cs:131016")  # fmt: skip
    # Addressed to another CS.
    elsewhere = _certificate(nakano, nakano, "cs:131016", _designated_household(net, nakano, 1), n=72)
    refused(nakano, seal(nakano.signer, elsewhere, nakano.certificate_der), grpc.StatusCode.PERMISSION_DENIED,
            "not cs:141038")  # fmt: skip
    new = terminal(net, NEW)
    for n in (70, 71, 72):  # nothing stored
        err = rpc_error(new.move_in, f"{OLD}/{n}", _date(_today()), "西区")
        assert err.code() == grpc.StatusCode.NOT_FOUND
    # A genuine one (cs:131016's own grant, signed by it) is accepted, and applied once when it comes twice.
    mine = _designated_household(net, chiyoda, 1)
    own = seal(chiyoda.signer, _certificate(chiyoda, chiyoda, NEW, mine, n=5), chiyoda.certificate_der)
    first = next_position(chiyoda)
    batches = [chiyoda.batch(NEW, [_item(own)], first), chiyoda.batch(NEW, [_item(own)], first + 1)]
    assert len(chiyoda.deliver(at, NEW, batches)) == 2  # the node still serves
    done = new.move_in("cs:131016/5", _date(_today()), "西区")
    assert [r.resident_code for r in done.records] == [mine[0].resident_code]


# -- 特例転入: the resident's card and PIN at the new CS ---------------------------------------------------


def test_special_move_in_needs_the_members_own_card(net, worker, tmp_path: Path):
    """The origin CS (played: cs:131016 is not in this network) lists each member's card in its 転出証明書情報;
    the new CS registers a 特例転入 only with that card presented (its PIN checked by the card itself)."""
    from jukinet.clients import present_card
    from jukinet.devnet.resident_cards import issue_resident_card
    from jukinet.hsm import TokenError

    origin = simulated(net, ["cs:131016"], tmp_path / "origin")
    alice, bob = _designated_household(net, origin, 2)
    alice_card = issue_resident_card(worker, net.network, None, "4821", alice)
    bob_card = issue_resident_card(worker, net.network, None, "7314", bob)
    certificate = _certificate(origin, origin, NEW, [alice, bob], n=40)
    for member, kit in zip(certificate.members, (alice_card, bob_card), strict=True):
        member.card_serials.append(kit.card_serial)
        member.card_auth_sha256.append(hashlib.sha256(kit.auth_certificate.public_bytes(Encoding.DER)).hexdigest())
    inbound = terminal(net, NEW).status(inbound=True).inbound
    first = 1 + max((i.last_sequence for i in inbound if i.sender == "cs:131016"), default=0)
    envelope = seal(origin.signer, certificate, origin.certificate_der)
    origin.deliver(address(net, NEW), NEW, [origin.batch(NEW, [_item(envelope)], first)])
    new, grant_id, day = terminal(net, NEW), "cs:131016/40", _date(_today())

    def presenter(kit):
        def present(binding: bytes):
            with kit.card(worker).unlock(kit.pin) as unlocked:
                return present_card(unlocked, "special-move-in", NEW, binding)

        return present

    with pytest.raises(TokenError):  # a wrong PIN: the card refuses to sign, nothing reaches the CS
        new.move_in(grant_id, day, "西区", [alice.resident_code], lambda b: present_card(
            alice_card.card(worker).unlock("0000"), "special-move-in", NEW, b))  # fmt: skip
    err = rpc_error(new.move_in, grant_id, day, "西区", [alice.resident_code], presenter(bob_card))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "is not member" in err.details()
    captured = []

    def once(binding: bytes):
        captured.append(presenter(alice_card)(binding))
        return captured[-1]

    done = new.move_in(grant_id, day, "西区", [alice.resident_code], once)
    assert done.records[0].change_reason == R.CHANGE_REASON_SPECIAL_MOVE_IN
    assert new.resident(alice.resident_code).address.municipality_code == "141038"
    assert rpc_error(new.resident, bob.resident_code).code() == grpc.StatusCode.NOT_FOUND  # nothing of bob stored
    # The same presentation again (a replay) is refused.
    err = rpc_error(new.move_in, grant_id, day, "西区", [bob.resident_code], lambda b: captured[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


# -- forged 転入通知 at the old CS ------------------------------------------------------------------------


def test_forged_move_in_notices_are_refused_at_the_old_cs(net, tmp_path: Path):
    """A 転入通知 another CS signs for 中野区's grant (it is not the grant's destination), or one for a grant
    中野区 never issued, is refused for good (the sender's item is quarantined), stores nothing at 中野区,
    and the genuine one from 横浜市西区 then closes the move."""
    rogue = simulated(net, ["cs:131016"], tmp_path / "rogue")
    person = _household(1)[0]
    _register(net, [person])
    old, code, today = terminal(net, OLD), person.resident_code, _today()
    grant_id = old.move_out([code], "141038", _date(today)).grant_id
    at = address(net, OLD)

    def refused(notice: moves_pb2.MoveInNotice, status: grpc.StatusCode, words: str) -> None:
        inbound = old.status(inbound=True).inbound
        first = 1 + max((i.last_sequence for i in inbound if i.sender == rogue.node_id), default=0)
        envelope = seal(rogue.signer, notice, rogue.certificate_der)
        item = link_pb2.LinkItem(move_in_notice=envelope).SerializeToString()
        history = old.status().history_entries
        err = rpc_error(rogue.deliver, at, OLD, [rogue.batch(OLD, [item], first)])
        assert err.code() == status and words in err.details() and f"#{first}" in err.details(), err.details()
        assert old.status().history_entries == history  # nothing stored
        assert old.resident(code).change_reason == R.CHANGE_REASON_MOVE_OUT  # the 除票 is not closed

    notice = moves_pb2.MoveInNotice(grant_id=grant_id, origin="cs:131016", destination=OLD, resident_codes=[code],
                                    reason=R.CHANGE_REASON_MOVE_IN)  # fmt: skip
    notice.move_in_date.CopyFrom(_date(today))
    refused(notice, grpc.StatusCode.PERMISSION_DENIED, f"is for {NEW}, not cs:131016")
    notice.grant_id = f"{OLD}/987654"
    refused(notice, grpc.StatusCode.NOT_FOUND, f"no 転出 {OLD}/987654 was granted")
    # The node still serves: the real 転入 at 横浜市西区 closes the move.
    wait_until(lambda: link(net, OLD, NEW).pending == 0, what="the 転出証明書情報 handed over")
    terminal(net, NEW).move_in(grant_id, _date(today), "西区")
    wait_until(lambda: old.resident(code).change_reason == R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED, what="転出確定")
