"""The four-item search over real LMDB, without gRPC: the index kept in the transaction that stores a record
(jukinet.server.changes.ChangeWriter at the national server), rebuilt for records stored before it existed,
and the search (jukinet.server.national.search): legal basis first, every candidate logged as a provision
in one transaction before the answer, too broad refused with nothing logged, redacted to the row."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.kana import Fold, Match, fold_version
from jukinet.domain.limits import MAX_SEARCH_CANDIDATES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.audit import Auditor
from jukinet.server.changes import ChangeWriter, Incoming
from jukinet.server.national.legal_table import LegalTable
from jukinet.server.national.provision import Provision
from jukinet.server.national.search import FourItemsSearch, IndexBuilder, answer_message
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Db
from jukinet.storage.search_index import FourItemsIndex
from jukinet.v1 import admin_pb2, notice_pb2, provision_pb2
from jukinet.v1 import identity_pb2 as pb


def _tables(path: Path):
    """The tables a seed file holds, as the servers read them from the directory (a getter, per call)."""
    table = LegalTable.load(path)
    return lambda: table


AGENCY = NodeId.parse("agency:7123456789012")
NAKANO, CHIYODA = "131148", "131016"
BIRTH = pb.Date(year=1980, month=4, day=1)
TABLE = """
[[row]]
agency = "7123456789012"
business = "pension-benefit"
title = "年金給付"

[[row]]
agency = "7123456789012"
business = "tax-check"
title = "税務"
fields = ["name", "birth_date", "sex"]

[[row]]
agency = "7123456789012"
business = "residence-check"
title = "居住確認"
fields = ["birth_date", "sex", "address"]
"""


class World:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "table.toml").write_text(TABLE, encoding="utf-8")
        self.clock = ManualClock()
        self.storage = NodeStorage.open(tmp_path / "national")
        self.auditor = Auditor(self.storage, self.clock)
        self.provision = Provision(self.storage, _tables(tmp_path / "table.toml"), self.auditor, self.clock)
        self.index = FourItemsIndex(self.storage.env, fold_version())
        IndexBuilder(self.storage, self.index).run() if IndexBuilder(self.storage, self.index).needed() else None
        self.search_ = FourItemsSearch(self.storage, self.index, self.provision, self.auditor, self.clock)
        self.writer = ChangeWriter(self.storage, national=True)
        self.rng = random.Random(9)
        self.sequence = {NAKANO: 0, CHIYODA: 0}

    def resident(self, kanji: str, kana: str, municipality: str = NAKANO, **items: object) -> pb.IdentityRecord:
        record = synthetic_resident(self.rng, municipality, pb.CHANGE_REASON_MOVE_IN, numbered=True)
        record.my_number = ""  # the national server has assigned none: the ownership check wants it empty
        record.name.kanji, record.name.kana = kanji, kana
        record.birth_date.CopyFrom(BIRTH)
        record.sex = pb.SEX_MALE
        record.status = pb.RECORD_STATUS_ACTIVE
        for name, value in items.items():
            setattr(record, name, value)
        code = record.resident_code
        self.storage.env.write(lambda txn: self.storage.designations.put(txn, code, f"cs:{municipality}", 1))
        return self.store(record)

    def store(self, record: pb.IdentityRecord, keys_beforehand: bool = False) -> pb.IdentityRecord:
        """``keys_beforehand``: the index keys worked out before the transaction, as the national intake does."""
        municipality = record.address.municipality_code
        self.sequence[municipality] += 1
        seq = self.sequence[municipality]
        notice = notice_pb2.ChangeNotice(origin=f"cs:{municipality}", sequence=seq, record=record)
        keys = FourItemsIndex.keys(record) if keys_beforehand else None
        self.storage.env.write(lambda txn: self.writer.apply(txn, [Incoming(seq, notice, None, keys)]))
        return record

    def index_keys(self) -> set[bytes]:
        """Every key of both search indexes."""
        env = self.storage.env
        with env.read() as txn:
            return {
                bytes(k)
                for db in (Db.SEARCH_NAMES, Db.SEARCH_KANA)
                for k in txn.cursor(db=env.dbs[db]).iternext(values=False)
            }

    def search(self, business: str = "pension-benefit", **items: object):
        query: dict[str, object] = dict(name="", kana="", birth_date=BIRTH, sex=pb.SEX_MALE)
        query.update(items)
        return self.search_.search(AGENCY, business, **query)  # type: ignore[arg-type]

    def logged(self) -> tuple[int, int]:
        return self.storage.provisions.count(), self.storage.audit.size()


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path)
    yield w
    w.storage.close()


def test_kana_in_hiragana_with_spaces_and_a_variant_find_the_record_and_say_how(world: World) -> None:
    stored = world.resident("髙橋 一郎", "タカハシ イチロウ")
    world.resident("高橋 二郎", "タカハシ ジロウ")  # a namesake by surname only: not a candidate
    answer = world.search(kana="たかはし　いちろう")
    [c] = answer.candidates
    assert c.record.resident_code == stored.resident_code and not c.removed
    assert c.how.kana.match is Match.FOLDED and c.how.kana.folds == (Fold.WIDTH, Fold.HIRAGANA)
    assert c.how.name.match is Match.NOT_GIVEN
    answer = world.search(name="高橋一郎")
    [c] = answer.candidates
    assert c.how.name.match is Match.FOLDED and Fold.KANJI_VARIANT in c.how.name.folds
    wire = answer_message(answer).candidates[0]
    assert list(wire.name.normalisations) == [Fold.SPACES.value, Fold.KANJI_VARIANT.value]


def test_every_candidate_is_a_provision_logged_in_one_transaction_before_the_answer(world: World) -> None:
    a = world.resident("佐藤 健", "サトウ ケン")
    b = world.resident("佐藤 健", "サトウ ケン", CHIYODA)
    before = world.logged()
    answer = world.search(name="佐藤 健")
    assert [c.record.resident_code for c in answer.candidates] == sorted([a.resident_code, b.resident_code])
    assert answer.search_id.startswith("four-items/")
    entries = world.storage.provisions.page(0, 100)[-2:]
    assert world.logged() == (before[0] + 2, before[1] + 2)  # and one audit entry each
    assert {e.resident_code for e in entries} == {a.resident_code, b.resident_code}
    for entry, candidate in zip(entries, answer.candidates, strict=True):
        assert entry.query_kind == admin_pb2.QUERY_KIND_FOUR_ITEMS
        assert entry.reference == answer.search_id and entry.agency == str(AGENCY)
        assert list(entry.items) == sorted(["resident_code", "my_number", "name", "birth_date", "sex", "address",
                                            "change"])  # fmt: skip
        assert entry.provision_id == candidate.provision_id
    # the address narrows: the other one is not provided, nor counted
    narrowed = world.search(name="佐藤 健", municipality=CHIYODA)
    assert [c.record.resident_code for c in narrowed.candidates] == [b.resident_code]
    assert narrowed.candidates[0].how.municipality is Match.EXACT
    assert "address_differs" not in answer_message(narrowed).DESCRIPTOR.fields_by_name  # the wire has no count
    assert narrowed.search_id != answer.search_id


def test_a_search_too_broad_is_refused_without_a_count_and_logs_nothing(world: World) -> None:
    many = MAX_SEARCH_CANDIDATES + 2
    stored = [world.resident("田中 太郎", "タナカ タロウ", NAKANO if i else CHIYODA) for i in range(many)]
    before = world.logged()
    with pytest.raises(Rejected) as refused:
        world.search(kana="ﾀﾅｶ ﾀﾛｳ")
    assert refused.value.problem is Problem.CONFLICT  # FAILED_PRECONDITION on the wire
    message = str(refused.value)
    assert f"more than {MAX_SEARCH_CANDIDATES} people match" in message and "add the address" in message
    assert set(re.findall(r"\d+", message)) == {str(MAX_SEARCH_CANDIDATES)}  # how many people is not said
    with pytest.raises(Rejected) as refused:  # 11 of them in 中野区: still too many
        world.search(kana="タナカタロウ", municipality=NAKANO)
    message = str(refused.value)
    assert "narrow the address" in message and set(re.findall(r"\d+", message)) == {str(MAX_SEARCH_CANDIDATES)}
    assert world.logged() == before  # nothing provided, nothing logged
    answer = world.search(kana="タナカタロウ", municipality=CHIYODA)
    assert [c.record.resident_code for c in answer.candidates] == [stored[0].resident_code]
    street = stored[5].address.text
    answer = world.search(name="田中太郎", municipality=NAKANO, address_text=street)
    assert stored[5].resident_code in [c.record.resident_code for c in answer.candidates]
    assert all(c.how.address_text.match in (Match.EXACT, Match.LEADING) for c in answer.candidates)


def test_no_legal_basis_is_denied_before_the_query_is_looked_at(world: World) -> None:
    world.resident("鈴木 一", "スズキ ハジメ")
    before = world.logged()
    for business in ("unlisted", ""):
        with pytest.raises(Rejected) as refused:
            world.search(business=business, kana="")  # an invalid query too: the row comes first
        assert refused.value.problem is Problem.DENIED and "legal table" in str(refused.value)
    outsider = NodeId.parse("agency:6100000000001")
    with pytest.raises(Rejected) as refused:
        world.search_.search(outsider, "pension-benefit", "", "スズキハジメ", BIRTH, pb.SEX_MALE)
    assert refused.value.problem is Problem.DENIED
    assert world.logged() == before


def test_a_candidate_holds_only_what_the_row_permits(world: World) -> None:
    stored = world.resident("鈴木 一", "スズキ ハジメ")
    [c] = world.search(business="tax-check", kana="スズキハジメ").candidates
    assert c.record.name.kanji == stored.name.kanji and c.record.sex == pb.SEX_MALE
    assert not c.record.resident_code and not c.record.HasField("address") and not c.record.my_number
    [entry] = world.storage.provisions.page(0, 10)
    assert list(entry.items) == ["birth_date", "name", "sex"]


def test_a_row_without_address_learns_nothing_of_the_address(world: World) -> None:
    """tax-check permits name, birth date and sex: an address in its query is refused (the filter would say
    where a person lives), and no candidate's report describes the municipality or the address text."""
    here = world.resident("伊藤 誠", "イトウ マコト")
    there = world.resident("伊藤 誠", "イトウ マコト", CHIYODA)
    before = world.logged()
    for address in ({"municipality": NAKANO}, {"address_text": here.address.text}, {"municipality": "x"}):
        with pytest.raises(Rejected) as refused:  # denied before the query is parsed: "x" is not INVALID
            world.search(business="tax-check", kana="イトウマコト", **address)
        assert refused.value.problem is Problem.DENIED, address
        assert "tax-check" in str(refused.value) and "field group address" in str(refused.value)
    assert world.logged() == before  # nothing provided, nothing logged
    answer = world.search(business="tax-check", kana="イトウマコト", name="伊藤誠")
    assert len(answer.candidates) == 2 and not any(c.record.resident_code for c in answer.candidates)
    for c in answer.candidates:
        assert c.how.municipality is Match.WITHHELD and c.how.address_text.match is Match.WITHHELD
        assert c.how.name.match is Match.FOLDED and c.how.kana.match is Match.FOLDED  # the row permits name
        assert not c.record.HasField("address")
    for wire in answer_message(answer).candidates:
        assert wire.municipality == provision_pb2.ITEM_MATCH_UNSPECIFIED
        assert wire.address_text.match == provision_pb2.ITEM_MATCH_UNSPECIFIED
        assert not wire.address_text.normalisations
    # the same query under a row permitting the address says how it compared (NOT_GIVEN here)
    full = world.search(kana="イトウマコト")
    assert {c.record.resident_code for c in full.candidates} == {here.resident_code, there.resident_code}
    assert all(c.how.municipality is Match.NOT_GIVEN for c in full.candidates)


def test_a_row_without_name_is_told_nothing_of_how_name_or_reading_compared(world: World) -> None:
    """A candidate found by its reading whose name differs: a row without "name" sees no DIFFERS (the name
    it may not receive), nor how the reading compared; a row with "name" sees both."""
    stored = world.resident("小林 誠", "コバヤシ マコト")
    [c] = world.search(business="residence-check", name="小林 実", kana="こばやし まこと").candidates
    assert c.how.name.match is Match.WITHHELD and c.how.kana.match is Match.WITHHELD
    assert not c.record.HasField("name") and c.record.address == stored.address
    assert c.how.municipality is Match.NOT_GIVEN  # the address group is permitted: reported
    wire = answer_message(world.search(business="residence-check", name="小林 実", kana="コバヤシマコト"))
    [w] = wire.candidates
    assert w.name.match == w.kana.match == provision_pb2.ITEM_MATCH_UNSPECIFIED and not w.kana.normalisations
    [c] = world.search(business="tax-check", name="小林 実", kana="コバヤシマコト").candidates
    assert c.how.name.match is Match.DIFFERS and c.how.kana.match is Match.FOLDED


def test_the_index_follows_a_name_change_and_keeps_a_removed_record(world: World) -> None:
    record = world.resident("山田 花子", "ヤマダ ハナコ", sex=pb.SEX_FEMALE)
    changed = pb.IdentityRecord()
    changed.CopyFrom(record)
    changed.name.kanji, changed.name.kana = "山﨑 花子", "ヤマサキ ハナコ"
    changed.change_reason = pb.CHANGE_REASON_NAME_CHANGE
    world.store(changed)
    assert world.search(kana="ヤマダハナコ", sex=pb.SEX_FEMALE).candidates == ()  # the old key is gone
    [c] = world.search(name="山崎花子", sex=pb.SEX_FEMALE).candidates
    assert c.how.name.folds == (Fold.SPACES, Fold.KANJI_VARIANT) and not c.removed
    died = pb.IdentityRecord()
    died.CopyFrom(changed)
    died.change_reason, died.status = pb.CHANGE_REASON_DEATH, pb.RECORD_STATUS_REMOVED
    world.store(died)
    [c] = world.search(kana="やまさき はなこ", sex=pb.SEX_FEMALE).candidates  # a 除票 is a valid answer
    assert c.removed and c.record.status == pb.RECORD_STATUS_REMOVED
    assert world.search(kana="ヤマサキハナコ", sex=pb.SEX_MALE).candidates == ()  # sex is a key
    assert world.search(kana="ヤマサキハナコ", sex=pb.SEX_FEMALE, birth_date=pb.Date(year=1980, month=4, day=2)
                        ).candidates == ()  # fmt: skip


def test_keys_worked_out_before_the_transaction_keep_the_index_exact(world: World) -> None:
    """The national intake folds each record's keys while checking its batch; a change that keeps the keyed
    items (a 転居) reuses them as the old keys, one that changes them (a name) deletes the old ones."""
    record = world.resident("山田 花子", "ヤマダ ハナコ", sex=pb.SEX_FEMALE)
    other = world.resident("鈴木 一郎", "スズキ イチロウ")
    moved = pb.IdentityRecord()
    moved.CopyFrom(record)
    moved.change_reason, moved.address.text = pb.CHANGE_REASON_RELOCATION, "中野五丁目1番"
    world.store(moved, keys_beforehand=True)
    assert world.index_keys() == {k for r in (moved, other) for k in FourItemsIndex.keys(r)}
    renamed = pb.IdentityRecord()
    renamed.CopyFrom(moved)
    renamed.change_reason, renamed.name.kanji, renamed.name.kana = (
        pb.CHANGE_REASON_NAME_CHANGE,
        "佐藤 花子",
        "サトウ ハナコ",
    )
    world.store(renamed, keys_beforehand=True)
    assert world.index_keys() == {k for r in (renamed, other) for k in FourItemsIndex.keys(r)}
    assert world.search(kana="ヤマダハナコ", sex=pb.SEX_FEMALE).candidates == ()
    [found] = world.search(kana="サトウハナコ", sex=pb.SEX_FEMALE).candidates
    assert found.record.address.text == "中野五丁目1番"


def test_records_stored_before_the_index_are_indexed_by_a_resumable_rebuild(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "old")
    rng = random.Random(5)
    records = []
    for _ in range(7):
        r = synthetic_resident(rng, NAKANO, numbered=True)
        r.name.kana, r.birth_date.year, r.sex = "コバヤシ マコト", 1990, pb.SEX_MALE
        records.append(r)
    storage.env.write(lambda txn: [storage.records.put(txn, r, None) for r in records])  # no index kept
    clock = ManualClock()
    (tmp_path / "table.toml").write_text(TABLE, encoding="utf-8")
    provision = Provision(storage, _tables(tmp_path / "table.toml"), Auditor(storage, clock), clock)
    index = FourItemsIndex(storage.env, fold_version())
    search = FourItemsSearch(storage, index, provision, Auditor(storage, clock), clock)

    def ask(r: pb.IdentityRecord) -> list[str]:
        answer = search.search(AGENCY, "pension-benefit", "", "コバヤシマコト", r.birth_date, pb.SEX_MALE)
        return [c.record.resident_code for c in answer.candidates]

    with pytest.raises(Rejected) as refused:  # never a partial answer
        ask(records[0])
    assert refused.value.problem is Problem.UNAVAILABLE and "being built" in str(refused.value)
    builder = IndexBuilder(storage, index, chunk=3)
    assert builder.needed()
    assert storage.env.write(lambda txn: index.rebuild_step(txn, 3)).indexed == 3
    with pytest.raises(Rejected):
        ask(records[0])
    resumed = IndexBuilder(storage, index, chunk=3)  # after a restart: resumes, does not start over
    assert resumed.needed() and resumed.run() == 4
    assert not IndexBuilder(storage, index).needed()
    for r in records:
        assert r.resident_code in ask(r)
    # other folds (a new table): the index is emptied and built again, with no stale key left
    other = FourItemsIndex(storage.env, b"\x01" * 32)
    assert IndexBuilder(storage, other).needed() and IndexBuilder(storage, other).run() == 7
    with storage.env.read() as txn:
        assert not index.ready(txn)
    storage.close()
