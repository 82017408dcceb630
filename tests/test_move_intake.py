"""Moves between two CS nodes as plain objects (no gRPC, no SoftHSM): 転出 at 中野区, the 転出証明書情報 over
a link intake at 横浜市西区, 転入 there, and the 転入通知 back — and every forged or misdirected 転入通知
the old CS refuses before storing anything, and the bounds on what another CS can make a CS hold.

Keys are software keys certified by a development PKI (SimulatedNode), stand-ins for tokens in this unit
test only; tests/test_moves_e2e.py runs the same flow between real node processes.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from jukinet.cs_node.move_intake import MoveInNotices, MoveOutCertificates
from jukinet.cs_node.moves import Moves
from jukinet.cs_node.registry import Registry
from jukinet.devnet.simulated import SimulatedNode
from jukinet.domain.clock import ManualClock, today
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import TrustStore, init_pki, seal
from jukinet.server.audit import Auditor
from jukinet.server.runtime.intake import LinkIntake
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, envelope_pb2, identity_pb2, link_pb2, moves_pb2

R = identity_pb2
OLD, NEW, ROGUE = "cs:131148", "cs:141038", "cs:131016"
DAY = 86_400
_END = b"-----END CERTIFICATE-----"


@dataclass
class Desk:  # the caller as the audit entry sees it
    actor: str
    primary: NodeId


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
        self.registry = Registry(self.id, self.upstream, self.storage, auditor, clock)
        self.moves = Moves(self.id, str(self.upstream), self.storage, self.node.signer, self.node.certificate_der,
                           auditor, lambda destination: "127.0.0.1:1", clock=clock)  # fmt: skip
        self.certificates = MoveOutCertificates(trust, self.storage, clock)
        self.notices = MoveInNotices(self.id, str(self.upstream), trust, self.storage, clock)
        handlers = {"move_out_certificate": self.certificates, "move_in_notice": self.notices}
        self.intake = LinkIntake([self.id], trust, self.storage, self.node.signer, self.node.certificate_der,
                                 handlers, clock)  # fmt: skip

    def register(self, people: list[R.IdentityRecord]) -> None:
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


def _people(n: int, municipality: str = "131148") -> list[R.IdentityRecord]:
    return [synthetic_resident(_rng, municipality) for _ in range(n)]


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

    unsigned = seal(new.signer, moves_pb2.MoveInNotice.FromString(genuine.payload))  # no certificate carried
    _refused(net.old, new, unsigned, Problem.UNAUTHENTICATED, "carries no signer certificate")
    tampered = envelope_pb2.Signed()
    tampered.CopyFrom(genuine)
    altered = moves_pb2.MoveInNotice.FromString(tampered.payload)
    altered.move_in_date.day = altered.move_in_date.day % 28 + 1
    tampered.payload = altered.SerializeToString()
    _refused(net.old, new, tampered, Problem.UNAUTHENTICATED, "signature does not verify")
    # Claims to come from the grant's destination, signed by another CS.
    _refused(net.old, rogue, signed(_notice(grant_id, codes, day), rogue), Problem.DENIED,
             f"names origin {NEW} but was signed by {ROGUE}")  # fmt: skip
    # A CS that is not the grant's destination, in its own name.
    _refused(net.old, rogue, signed(_notice(grant_id, codes, day, origin=ROGUE), rogue), Problem.DENIED,
             f"is for {NEW}, not {ROGUE}")  # fmt: skip
    _refused(net.old, new, signed(_notice(f"{OLD}/999", codes, day)), Problem.NOT_FOUND, f"no 転出 {OLD}/999")
    stranger = _people(1)[0].resident_code
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
