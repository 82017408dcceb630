"""Moves between two CS nodes as plain objects (no gRPC, no SoftHSM): 転出 at 中野区, the 転出証明書情報 over
a link intake at 横浜市西区, 転入 there, and the 転入通知 back — and every forged or misdirected 転入通知
the old CS refuses before storing anything, and the bounds on what another CS can make a CS hold.

Keys are software keys certified by a development PKI (SimulatedNode), stand-ins for tokens in this unit
test only; tests/test_moves_e2e.py runs the same flow between real node processes. There is no national
server either: a stand-in (:class:`Designations`) designates each code a CS's registry claims and answers a
made-up My Number for it; residents another CS only names in what it signs carry invented numbers.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from jukinet.cs_node.move_intake import MoveInNotices, MoveOutCertificates
from jukinet.cs_node.moves import Moves
from jukinet.cs_node.registry import Registry
from jukinet.devnet.simulated import SimulatedNode
from jukinet.domain.clock import ManualClock, today
from jukinet.domain.codes import generate_my_number, generate_resident_code
from jukinet.domain.copies import refusing_measure
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import TrustStore, init_pki, seal
from jukinet.server.audit import Auditor
from jukinet.server.runtime.intake import LinkIntake
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, copies_pb2, envelope_pb2, identity_pb2, link_pb2, moves_pb2

R = identity_pb2
OLD, NEW, ROGUE = "cs:131148", "cs:141038", "cs:131016"
DAY = 86_400
_END = b"-----END CERTIFICATE-----"


@dataclass
class Desk:  # the caller as the audit entry sees it
    actor: str
    primary: NodeId


class Designations:
    """The national server as a CS's registry sees it (a stand-in for CodeSupply): each code claimed is
    designated to the CS there and then (put in its reserve), and has a made-up My Number."""

    def __init__(self, storage: NodeStorage) -> None:
        self._storage = storage
        self._numbers: dict[str, str] = {}
        self.national = None

    def claim(self, count: int) -> list[str]:
        codes = [generate_resident_code(_rng) for _ in range(count)]
        self._storage.env.write(lambda txn: self._storage.reserve.add(txn, codes, 1))
        self._numbers.update((code, generate_my_number(_rng)) for code in codes)
        return codes

    def release(self, codes) -> None:
        pass

    def numbers(self, codes, timeout=None) -> dict[str, str]:
        return {code: self._numbers[code] for code in codes if code in self._numbers}


class Cs:
    """One CS: its store, its identity (a software key certified for it), Moves and its link intake."""

    def __init__(self, base: Path, pki: Path, trust: TrustStore, node_id: str, clock: ManualClock) -> None:
        self.id = NodeId.parse(node_id)
        self.upstream = NodeId.prefecture(node_id[3:5])
        self.node = SimulatedNode.issue(pki, [node_id], base / node_id.replace(":", "-"))
        self.storage = NodeStorage.open(base / f"data-{node_id.replace(':', '-')}")
        self.clock, self.trust = clock, trust
        auditor = Auditor(self.storage, clock)
        self.desk = Desk(f"operator:{node_id[3:]}:clerk", self.id)
        self.registry = Registry(self.id, self.upstream, self.storage, auditor, clock,
                                 supply=Designations(self.storage))  # fmt: skip
        self.moves = Moves(self.id, str(self.upstream), self.storage, self.node.signer, self.node.certificate_der,
                           auditor, lambda destination: "127.0.0.1:1", clock=clock)  # fmt: skip
        self.certificates = MoveOutCertificates(trust, self.storage, clock)
        self.notices = MoveInNotices(self.id, str(self.upstream), trust, self.storage, clock)
        handlers = {"move_out_certificate": self.certificates, "move_in_notice": self.notices}
        self.intake = LinkIntake([self.id], trust, self.storage, self.node.signer, self.node.certificate_der,
                                 handlers, clock)  # fmt: skip

    def register(self, people: list[R.IdentityRecord]) -> None:
        """Register ``people`` here; those who left their numbers empty get them, written into ``people``."""
        self.registry.record(people, self.desk, audit_pb2.AUDIT_ACTION_RECORD_CHANGE)

    def queued(self, destination: str) -> list[bytes]:
        return [item for _, item in self.storage.queues.pending(destination, 0, 1 << 20)]

    def next_position(self, sender: str) -> int:
        with self.storage.env.read() as txn:
            return self.storage.inbox.get(txn, sender, str(self.id)) + 1

    def peer(self, node: SimulatedNode):
        """The TLS identity ``node`` presents when it connects."""
        return self.trust.identify(node.tls_cert.read_bytes().split(_END)[0] + _END + b"\n")

    def deliver(self, sender: SimulatedNode, items: list[bytes]) -> link_pb2.Receipt:
        batch = sender.batch(str(self.id), items, self.next_position(sender.node_id))
        signed = self.intake.accept(batch, self.peer(sender))
        return link_pb2.Receipt.FromString(signed.payload)

    def state(self) -> tuple:
        """What a refused item must not change: records, history, queues, marks, moves held."""
        s = self.storage
        with s.env.read() as txn:
            moves = sorted((bytes(k), bytes(v)) for db in ("move_outs", "moves_received")
                           for k, v in txn.cursor(db=s.env.dbs[db]))  # fmt: skip
        return (s.records.count(), s.history.count(), s.queues.states(), s.inbox.all(), moves)


@pytest.fixture
def net(tmp_path: Path):
    pki = tmp_path / "pki"
    init_pki(pki)
    trust, clock = TrustStore.load(pki), ManualClock()
    old, new = Cs(tmp_path, pki, trust, OLD, clock), Cs(tmp_path, pki, trust, NEW, clock)
    rogue = SimulatedNode.issue(pki, [ROGUE], tmp_path / "rogue")
    prefecture = SimulatedNode.issue(pki, ["pref:13"], tmp_path / "pref-13")
    yield Net(old, new, rogue, prefecture, clock)
    old.storage.close()
    new.storage.close()


@dataclass
class Net:
    old: Cs
    new: Cs
    rogue: SimulatedNode  # a CS with a valid node certificate, acting dishonestly
    prefecture: SimulatedNode
    clock: ManualClock


_rng = random.Random(8)


def _date(day: datetime.date) -> R.Date:
    return R.Date(year=day.year, month=day.month, day=day.day)


def _people(n: int, municipality: str = "131148", numbered: bool = False) -> list[R.IdentityRecord]:
    """Residents as an operator enters them (numbers empty: registering them gives them theirs), or
    ``numbered``: with invented ones, for residents another CS only names in what it signs."""
    return [synthetic_resident(_rng, municipality, numbered=numbered) for _ in range(n)]


def _chiyoda(n: int) -> list[R.IdentityRecord]:
    """Residents of 千代田区 (131016, the rogue CS's municipality), numbered: it only names them."""
    return _people(n, "131016", numbered=True)


def _move_out(net: Net, people: list[R.IdentityRecord], planned: datetime.date | None = None) -> str:
    request = moves_pb2.MoveOutRequest(resident_codes=[p.resident_code for p in people],
                                       destination_municipality_code=NEW[3:])  # fmt: skip
    request.planned_date.CopyFrom(_date(planned or today(net.clock)))
    return net.old.moves.move_out(request, net.old.desk).grant_id


def _move_in(net: Net, grant_id: str, codes: list[str] = (), day: datetime.date | None = None):
    request = moves_pb2.MoveInRequest(grant_id=grant_id, resident_codes=list(codes), address_text="西区一丁目")
    request.move_in_date.CopyFrom(_date(day or today(net.clock)))
    return net.new.moves.move_in(request, net.new.desk)


def _moved(net: Net, n: int = 2) -> tuple[list[R.IdentityRecord], str, envelope_pb2.Signed]:
    """A household moved from the old CS to the new one; returns it, the grant id and the 転入通知 the new
    CS queued for the old one (not delivered yet)."""
    people = _people(n)
    net.old.register(people)
    grant_id = _move_out(net, people)
    (certificate,) = net.old.queued(NEW)
    net.new.deliver(net.old.node, [certificate])
    _move_in(net, grant_id)
    (notice,) = net.new.queued(OLD)
    return people, grant_id, link_pb2.LinkItem.FromString(notice).move_in_notice


def _notice_item(envelope: envelope_pb2.Signed) -> bytes:
    return link_pb2.LinkItem(move_in_notice=envelope).SerializeToString()


def _notice(grant_id: str, codes: list[str], day: datetime.date, *, origin: str = NEW, destination: str = OLD):
    notice = moves_pb2.MoveInNotice(grant_id=grant_id, origin=origin, destination=destination,
                                    resident_codes=codes, reason=R.CHANGE_REASON_MOVE_IN)  # fmt: skip
    notice.move_in_date.CopyFrom(_date(day))
    return notice


def _closed(cs: Cs, code: str) -> bool:
    return cs.storage.records.get(code).change_reason == R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED


def _refused(cs: Cs, sender: SimulatedNode, envelope: envelope_pb2.Signed, problem: Problem, words: str) -> None:
    """The 転入通知 is refused for good (the sender quarantines it) and nothing is stored."""
    before, position = cs.state(), cs.next_position(sender.node_id)
    with pytest.raises(ItemRefused) as exc:
        cs.deliver(sender, [_notice_item(envelope)])
    assert exc.value.problem is problem and words in str(exc.value), str(exc.value)
    assert exc.value.position == position
    assert cs.state() == before, "a refused 転入通知 must store nothing"


# -- the 転入通知 at the old CS ------------------------------------------------------------------------


def test_a_genuine_notice_closes_each_member_once(net: Net) -> None:
    people, grant_id, signed = _moved(net)
    codes = [p.resident_code for p in people]
    assert not any(_closed(net.old, c) for c in codes)
    history = net.old.storage.history.count()
    receipt = net.old.deliver(net.new.node, [_notice_item(signed)])
    assert (receipt.applied, receipt.duplicates) == (1, 0)
    assert all(_closed(net.old, c) for c in codes)
    assert net.old.storage.history.count() == history + 2
    # Delivered again (a quarantined copy retried, at a new position): counted as applied, changes nothing.
    before = net.old.storage.history.count()
    again = net.old.deliver(net.new.node, [_notice_item(signed), _notice_item(signed)])
    assert again.applied == 2 and net.old.storage.history.count() == before
    assert list(net.old.storage.moves.get_move_out(grant_id).closed) == codes


def test_a_notice_relayed_by_another_cs_is_judged_by_its_own_signature(net: Net) -> None:
    people, _, signed = _moved(net, 1)
    net.old.deliver(net.rogue, [_notice_item(signed)])  # end to end: whoever delivers it
    assert _closed(net.old, people[0].resident_code)


def test_forged_and_misdirected_notices_are_refused_and_store_nothing(net: Net) -> None:
    people, grant_id, genuine = _moved(net)
    codes = [p.resident_code for p in people]
    day = today(net.clock)
    new, rogue = net.new.node, net.rogue

    def signed(notice: moves_pb2.MoveInNotice, by: SimulatedNode = new) -> envelope_pb2.Signed:
        return seal(by.signer, notice, by.certificate_der)

    tampered = envelope_pb2.Signed()
    tampered.CopyFrom(genuine)
    altered = moves_pb2.MoveInNotice.FromString(tampered.payload)
    del altered.resident_codes[1:]  # still a valid notice, only not the one signed
    tampered.payload = altered.SerializeToString()
    _refused(net.old, new, tampered, Problem.UNAUTHENTICATED, "signature does not verify")
    unsigned = seal(new.signer, moves_pb2.MoveInNotice.FromString(genuine.payload))  # no certificate carried
    _refused(net.old, new, unsigned, Problem.UNAUTHENTICATED, "carries no signer certificate")
    # Claims to come from the grant's destination, signed by another CS.
    _refused(net.old, rogue, signed(_notice(grant_id, codes, day), rogue), Problem.DENIED,
             f"names origin {NEW} but was signed by {ROGUE}")  # fmt: skip
    # A CS that is not the grant's destination, in its own name.
    _refused(net.old, rogue, signed(_notice(grant_id, codes, day, origin=ROGUE), rogue), Problem.DENIED,
             f"is for {NEW}, not {ROGUE}")  # fmt: skip
    _refused(net.old, new, signed(_notice(f"{OLD}/999", codes, day)), Problem.NOT_FOUND, f"no 転出 {OLD}/999")
    stranger = _people(1, numbered=True)[0].resident_code
    _refused(net.old, new, signed(_notice(grant_id, [stranger], day)), Problem.DENIED,
             f"{stranger} is not a member of grant {grant_id}")  # fmt: skip
    _refused(net.old, new, signed(_notice(grant_id, codes, day, destination=ROGUE)), Problem.DENIED,
             f"not {OLD}")  # fmt: skip
    _refused(net.old, new, signed(_notice("not a grant", codes, day)), Problem.INVALID, "grant_id")
    # Handed over by a node that is not a CS: the whole batch is refused, nothing stored.
    before = net.old.state()
    with pytest.raises(Rejected) as exc:
        net.old.deliver(net.prefecture, [_notice_item(genuine)])
    assert exc.value.problem is Problem.DENIED and not isinstance(exc.value, ItemRefused)
    assert "pref:13 is not a CS" in str(exc.value) and net.old.state() == before
    assert not any(_closed(net.old, c) for c in codes)
    # The node still serves: the genuine notice closes the move.
    net.old.deliver(new, [_notice_item(genuine)])
    assert all(_closed(net.old, c) for c in codes)


def test_a_notice_must_report_a_move_in_date_and_reason_the_grant_allows(net: Net) -> None:
    people, grant_id, _ = _moved(net, 1)
    codes = [people[0].resident_code]
    day, new = today(net.clock), net.new.node
    planned = day  # _moved moves out today

    def signed(notice: moves_pb2.MoveInNotice) -> envelope_pb2.Signed:
        return seal(new.signer, notice, new.certificate_der)

    late = planned + datetime.timedelta(days=31)
    _refused(net.old, new, signed(_notice(grant_id, codes, late)), Problem.INVALID, "after today")
    net.clock.advance(40 * DAY)  # now 31 days after the planned date is in the past, yet outside the window
    _refused(net.old, new, signed(_notice(grant_id, codes, late)), Problem.INVALID,
             f"outside -14..+30 days of the planned move-out date {planned.isoformat()}")  # fmt: skip
    early = planned - datetime.timedelta(days=15)
    _refused(net.old, new, signed(_notice(grant_id, codes, early)), Problem.INVALID, "outside -14..+30 days")
    odd = _notice(grant_id, codes, planned)
    odd.reason = R.CHANGE_REASON_BIRTH
    _refused(net.old, new, signed(odd), Problem.INVALID, "is not 転入 or 特例転入")
    net.old.deliver(new, [_notice_item(signed(_notice(grant_id, codes, planned + datetime.timedelta(days=30))))])
    assert _closed(net.old, codes[0])


# -- 転出 at the old CS: one open grant per resident ------------------------------------------------------


def _reenter(cs: Cs, person: R.IdentityRecord) -> None:
    """The 除票 re-entered at the old CS (職権記載), as a dishonest or mistaken clerk could."""
    record = R.IdentityRecord()
    record.CopyFrom(person)
    record.change_reason = R.CHANGE_REASON_EX_OFFICIO_ENTRY
    record.change_date.CopyFrom(_date(today(cs.clock)))
    cs.register([record])


def test_a_resident_is_moved_out_by_one_open_grant_at_a_time(net: Net) -> None:
    person = _people(1)[0]
    net.old.register([person])
    first = _move_out(net, [person])
    _reenter(net.old, person)
    before = net.old.state()
    with pytest.raises(Rejected) as exc:
        _move_out(net, [person])
    assert exc.value.problem is Problem.CONFLICT and f"転出 {first} to {NEW}" in str(exc.value), str(exc.value)
    assert "is open until" in str(exc.value) and net.old.state() == before  # nothing stored
    assert net.old.storage.records.get(person.resident_code).status == R.RECORD_STATUS_ACTIVE
    # Once its certificate can no longer serve a 転入 anywhere (44 days after the planned date, and a day for
    # the destination's clock), a new 転出 is granted.
    net.clock.advance(45 * DAY)
    with pytest.raises(Rejected):
        _move_out(net, [person])
    net.clock.advance(DAY)
    assert _move_out(net, [person]) != first


def test_a_closed_move_does_not_hold_up_a_later_one(net: Net) -> None:
    people, grant_id, notice = _moved(net, 1)
    net.old.deliver(net.new.node, [_notice_item(notice)])
    _reenter(net.old, people[0])
    assert _move_out(net, people) != grant_id


# -- what another CS can make a CS hold: 転出証明書情報 --------------------------------------------------


def _certificate(origin: SimulatedNode, people: list[R.IdentityRecord], planned: datetime.date, n: int,
                 destination: str = NEW, removed: datetime.date | None = None, dv=()) -> bytes:  # fmt: skip
    """A 転出証明書情報 of ``origin``'s own residents, signed by it (a CS with a valid node certificate)."""
    grant = moves_pb2.MoveOutGrant(grant_id=f"{origin.node_id}/{n}", origin=origin.node_id, destination=destination,
                                   resident_codes=[p.resident_code for p in people])  # fmt: skip
    grant.planned_date.CopyFrom(_date(planned))
    certificate = moves_pb2.MoveOutCertificate(grant=seal(origin.signer, grant, origin.certificate_der))
    certificate.planned_date.CopyFrom(_date(planned))
    for person in people:
        record = R.IdentityRecord()
        record.CopyFrom(person)
        record.change_reason, record.status = R.CHANGE_REASON_MOVE_OUT, R.RECORD_STATUS_REMOVED
        record.change_date.CopyFrom(_date(removed or min(planned, datetime.date.today())))
        certificate.members.add(record=record, dv_measures=dv)
    envelope = seal(origin.signer, certificate, origin.certificate_der)
    return link_pb2.LinkItem(move_out_certificate=envelope).SerializeToString()


def _refused_certificate(cs: Cs, sender: SimulatedNode, item: bytes, problem: Problem, words: str) -> None:
    before, position = cs.state(), cs.next_position(sender.node_id)
    with pytest.raises(ItemRefused) as exc:
        cs.deliver(sender, [item])
    assert exc.value.problem is problem and words in str(exc.value) and exc.value.position == position, str(exc.value)
    assert cs.state() == before, "a refused 転出証明書情報 must store nothing"


def test_a_certificate_outside_its_window_is_refused(net: Net) -> None:
    day, rogue = today(net.clock), net.rogue
    ahead = _certificate(rogue, _chiyoda(1), day + datetime.timedelta(days=16), 1, removed=day)
    _refused_certificate(net.new, rogue, ahead, Problem.INVALID, "a 転出届 is filed at most 14 days ahead")
    stale = _certificate(rogue, _chiyoda(1), day - datetime.timedelta(days=45), 2)
    _refused_certificate(net.new, rogue, stale, Problem.CONFLICT, "after its last day for a 転入")
    # At the edges: 15 days ahead (a day of clock skew), and planned exactly 44 days ago.
    net.new.deliver(rogue, [_certificate(rogue, _chiyoda(1), day + datetime.timedelta(days=15), 3)])
    net.new.deliver(rogue, [_certificate(rogue, _chiyoda(1), day - datetime.timedelta(days=44), 4)])
    assert net.new.storage.moves.get_held(ROGUE)[0] == 2


def test_one_origin_cannot_fill_a_cs(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    import jukinet.cs_node.move_intake as intake

    monkeypatch.setattr(intake, "MAX_HELD_PER_ORIGIN", 3)
    day, rogue = today(net.clock), net.rogue
    items = [_certificate(rogue, _chiyoda(2), day, n) for n in range(1, 5)]
    net.new.deliver(rogue, items[:3])
    _refused_certificate(net.new, rogue, items[3], Problem.EXHAUSTED, "cs:131016's 転出証明書情報 held here would be 4")
    assert net.new.deliver(rogue, [items[0]]).applied == 1  # one held already: kept as first received, no share
    # Another origin has its own share: a genuine 転出 from 中野区 still arrives.
    person = _people(1)[0]
    net.old.register([person])
    grant_id = _move_out(net, [person])
    net.new.deliver(net.old.node, net.old.queued(NEW))
    assert net.new.storage.moves.get_received(grant_id) is not None
    # By bytes too: a share of 2.5 certificates' bytes takes two more once the three held have expired.
    size = net.new.storage.moves.get_received(grant_id).certificate.ByteSize()
    monkeypatch.setattr(intake, "MAX_HELD_PER_ORIGIN_BYTES", int(size * 2.5))
    monkeypatch.setattr(intake, "MAX_HELD_PER_ORIGIN", 100)
    net.clock.advance(45 * DAY)
    later = today(net.clock)
    fresh = [_certificate(rogue, _chiyoda(1), later, n) for n in range(10, 13)]
    net.new.deliver(rogue, fresh[:2])
    _refused_certificate(net.new, rogue, fresh[2], Problem.EXHAUSTED, "bytes")
    assert net.new.storage.moves.get_held(ROGUE)[0] == 2


def test_held_certificates_are_deleted_after_their_window_and_never_taken_again(net: Net) -> None:
    day, rogue = today(net.clock), net.rogue
    first = _certificate(rogue, _chiyoda(1), day, 1)
    net.new.deliver(rogue, [first])
    assert net.new.storage.moves.get_received(f"{ROGUE}/1") is not None
    net.clock.advance(44 * DAY)  # the last day a 転入 can use it: still held
    assert net.new.certificates.sweep(today(net.clock)) == 0
    net.clock.advance(DAY)
    net.new.deliver(rogue, [_certificate(rogue, _chiyoda(1), today(net.clock), 2)])  # sweeps first
    assert net.new.storage.moves.get_received(f"{ROGUE}/1") is None
    assert net.new.storage.moves.get_held(ROGUE)[0] == 1
    # Sent again (a quarantined copy retried): refused, so a deleted certificate never serves a 転入.
    _refused_certificate(net.new, rogue, first, Problem.CONFLICT, "after its last day for a 転入")
    with pytest.raises(Rejected) as exc:
        _move_in(net, f"{ROGUE}/1")
    assert exc.value.problem is Problem.NOT_FOUND


def test_two_batches_checked_before_either_commits_cannot_both_take_the_last_share(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jukinet.cs_node.move_intake as intake

    monkeypatch.setattr(intake, "MAX_HELD_PER_ORIGIN", 1)
    day, rogue, cs = today(net.clock), net.rogue, net.new
    marks = cs.intake.marks()  # one stream: batch 2 is checked while batch 1 commits
    one = rogue.batch(NEW, [_certificate(rogue, _chiyoda(1), day, 1)], 1)
    two = rogue.batch(NEW, [_certificate(rogue, _chiyoda(1), day, 2)], 2)
    first, second = cs.intake.prepare(one, cs.peer(rogue), marks), cs.intake.prepare(two, cs.peer(rogue), marks)
    cs.intake.commit(first).result()
    with pytest.raises(Rejected) as exc:
        cs.intake.commit(second).result()
    assert exc.value.problem is Problem.CONFLICT and "resend" in str(exc.value)
    assert cs.storage.moves.get_received(f"{ROGUE}/2") is None and cs.storage.moves.get_held(ROGUE)[0] == 1
    again = _certificate(rogue, _chiyoda(1), day, 2)  # resent after the refusal: refused for good
    _refused_certificate(cs, rogue, again, Problem.EXHAUSTED, "would be 2")


# -- forged 転出証明書情報 (each caught by one check alone) ----------------------------------------------


def test_forged_certificates_are_refused_and_store_nothing(net: Net) -> None:
    people = _people(2)
    net.old.register(people)
    grant_id = _move_out(net, people)
    (queued,) = net.old.queued(NEW)
    genuine = link_pb2.LinkItem.FromString(queued).move_out_certificate
    old, rogue = net.old.node, net.rogue

    def item(envelope: envelope_pb2.Signed) -> bytes:
        return link_pb2.LinkItem(move_out_certificate=envelope).SerializeToString()

    tampered = envelope_pb2.Signed()
    tampered.CopyFrom(genuine)
    altered = moves_pb2.MoveOutCertificate.FromString(tampered.payload)
    altered.members[0].record.name.kanji = "偽者 花子"
    tampered.payload = altered.SerializeToString()
    _refused_certificate(net.new, old, item(tampered), Problem.UNAUTHENTICATED, "signature does not verify")
    unsigned = envelope_pb2.Signed()
    unsigned.CopyFrom(genuine)
    unsigned.ClearField("certificate")
    _refused_certificate(net.new, old, item(unsigned), Problem.UNAUTHENTICATED, "carries no signer certificate")
    # 中野区's genuine grant and members, signed as a certificate by another CS (which could then alter them).
    resigned = seal(rogue.signer, moves_pb2.MoveOutCertificate.FromString(genuine.payload), rogue.certificate_der)
    _refused_certificate(net.new, rogue, item(resigned), Problem.DENIED, f"not by the grant's origin {OLD}")
    # A grant naming 中野区 as its origin but signed by another CS, inside a certificate 中野区's key signed.
    grant = moves_pb2.MoveOutGrant.FromString(moves_pb2.MoveOutCertificate.FromString(genuine.payload).grant.payload)
    grant.grant_id = f"{OLD}/91"
    forged = moves_pb2.MoveOutCertificate.FromString(genuine.payload)
    forged.grant.CopyFrom(seal(rogue.signer, grant, rogue.certificate_der))
    _refused_certificate(net.new, old, item(seal(old.signer, forged, old.certificate_der)), Problem.DENIED,
                         f"the grant names origin {OLD} but was signed by {ROGUE}")  # fmt: skip
    elsewhere = _certificate(old, _people(1, numbered=True), today(net.clock), 90, destination=ROGUE)
    _refused_certificate(net.new, old, elsewhere, Problem.DENIED, f"is addressed to {ROGUE}, not {NEW}")
    assert net.new.storage.moves.get_received(grant_id) is None
    net.new.deliver(old, [queued])  # the node still serves: the genuine one is held
    assert net.new.storage.moves.get_received(grant_id) is not None


# -- 転入 at the new CS: time limits, once per member, the member's own card --------------------------------


def test_a_late_move_in_is_refused_and_stores_nothing(net: Net) -> None:
    people = _people(1)
    net.old.register(people)
    grant_id = _move_out(net, people)
    net.new.deliver(net.old.node, net.old.queued(NEW))
    net.clock.advance(31 * DAY)
    before = net.new.state()
    with pytest.raises(Rejected) as exc:
        _move_in(net, grant_id)  # moved in today, 31 days after the planned date
    assert exc.value.problem is Problem.CONFLICT and "31 days after the planned move-out date" in str(exc.value)
    assert net.new.state() == before and net.new.storage.records.get(people[0].resident_code) is None


def test_a_certificate_is_kept_as_first_received_and_serves_each_member_once(net: Net) -> None:
    people = _people(1)
    net.old.register(people)
    code = people[0].resident_code
    grant_id = _move_out(net, people)
    (certificate,) = net.old.queued(NEW)
    net.new.deliver(net.old.node, [certificate])
    _move_in(net, grant_id)
    net.new.deliver(net.old.node, [certificate])  # sent again (a quarantined copy retried)
    assert list(net.new.storage.moves.get_received(grant_id).moved_in) == [code]
    # Moved on from 横浜市西区 (its 除票 there): the first certificate still cannot move them in again.
    onward = moves_pb2.MoveOutRequest(resident_codes=[code], destination_municipality_code=OLD[3:])
    onward.planned_date.CopyFrom(_date(today(net.clock)))
    net.new.moves.move_out(onward, net.new.desk)
    before = net.new.state()
    with pytest.raises(Rejected) as exc:
        _move_in(net, grant_id, [code])
    assert exc.value.problem is Problem.ALREADY_EXISTS and f"moved in under {grant_id} already" in str(exc.value)
    assert net.new.state() == before


@dataclass
class _Certificate:
    der: bytes

    def public_bytes(self, encoding: object) -> bytes:
        return self.der


@dataclass
class _Presented:
    card_serial: str
    certificate: _Certificate


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class _Cards:
    """Stands in for CardPresenceVerifier (tests/test_moves_e2e.py presents real card tokens): every
    presentation verifies, as the card ``serial`` with the authentication certificate ``der``."""

    def __init__(self, serial: str, der: bytes | None = None) -> None:
        self.serial = serial
        self.der = der if der is not None else f"cert-{serial}".encode()

    def verify(self, presentation, purpose: str, node: str, binding: bytes) -> _Presented:
        assert purpose == "special-move-in" and node == NEW and binding
        return _Presented(self.serial, _Certificate(self.der))


def test_a_special_move_in_needs_a_card_the_certificate_lists_for_that_member(net: Net) -> None:
    alice, bob = _people(2)
    net.old.register([alice, bob])
    net.old.moves.card_serials = lambda txn, code: [(f"card-{code}", _fingerprint(f"cert-card-{code}".encode()))]
    grant_id = _move_out(net, [alice, bob])
    net.new.deliver(net.old.node, net.old.queued(NEW))

    def special(serial: str, der: bytes | None = None):
        net.new.moves.cards = _Cards(serial, der)
        request = moves_pb2.MoveInRequest(grant_id=grant_id, resident_codes=[alice.resident_code], address_text="西区")
        request.move_in_date.CopyFrom(_date(today(net.clock)))
        request.card.signature = b"s" * 64
        return net.new.moves.move_in(request, net.new.desk)

    before = net.new.state()
    with pytest.raises(Rejected) as exc:
        special(f"card-{bob.resident_code}")  # bob's card for alice
    assert exc.value.problem is Problem.DENIED and f"is not member {alice.resident_code}'s card" in str(exc.value)
    assert net.new.state() == before
    with pytest.raises(Rejected) as exc:  # alice's serial, but a certificate made for it with another key
        special(f"card-{alice.resident_code}", b"a clone's certificate")
    assert exc.value.problem is Problem.DENIED and "is not the one" in str(exc.value)
    assert net.new.state() == before
    done = special(f"card-{alice.resident_code}")
    assert done.records[0].change_reason == R.CHANGE_REASON_SPECIAL_MOVE_IN


def test_dv_support_measures_travel_with_the_move_and_keep_refusing(net: Net) -> None:
    """Attack (review finding 6): V has a DV measure at 中野区 and moves; the new home CS must keep refusing
    the copy. The measures ride in the signed 転出証明書情報 and are registered in the 転入's transaction."""
    people = _people(1)
    net.old.register(people)
    code = people[0].resident_code
    everyone = copies_pb2.DvMeasure(resident_code=code, scope=copies_pb2.DV_SCOPE_ALL_REQUESTS, registered_by="a")
    chiyoda = copies_pb2.DvMeasure(resident_code=code, scope=copies_pb2.DV_SCOPE_MUNICIPALITIES,
                                   municipalities=["131016"], registered_by="b")  # fmt: skip
    net.old.storage.env.write(lambda txn: [net.old.storage.dv_measures.add(txn, m) for m in (everyone, chiyoda)])
    grant_id = _move_out(net, people)
    net.new.deliver(net.old.node, net.old.queued(NEW))
    _move_in(net, grant_id)
    held = net.new.storage.dv_measures.get(code)
    assert [(m.scope, list(m.municipalities)) for m in held] == [
        (copies_pb2.DV_SCOPE_ALL_REQUESTS, []),
        (copies_pb2.DV_SCOPE_MUNICIPALITIES, ["131016"]),
    ]
    assert refusing_measure(held, NodeId.parse(ROGUE)) is not None  # the new home refuses the copy

    # A certificate carrying measures that are not the member's, too many, or malformed is refused whole.
    day = today(net.clock)
    other = copies_pb2.DvMeasure(resident_code=generate_resident_code(_rng), scope=copies_pb2.DV_SCOPE_ALL_REQUESTS)
    bad_scope = copies_pb2.DvMeasure(scope=copies_pb2.DV_SCOPE_MUNICIPALITIES, municipalities=["999999"])
    for n, (dv, words) in enumerate(
        (
            ([other], "protects another resident"),
            ([everyone] * 17, "dv_measures: 17; at most 16"),
            ([bad_scope], "is not a municipality with residents"),
        ),
        start=70,
    ):
        person = _chiyoda(1)
        theirs = []
        for measure in dv:  # each the member's, but ``other``
            copy = copies_pb2.DvMeasure()
            copy.CopyFrom(measure)
            copy.resident_code = measure.resident_code if measure is other else person[0].resident_code
            theirs.append(copy)
        item = _certificate(net.rogue, person, day, n, dv=theirs)
        _refused_certificate(net.new, net.rogue, item, Problem.INVALID, words)
