"""Four-item search end to end: residents registered at CS nodes reach the national server through the
prefecture (real processes, mTLS, SoftHSM, LMDB), and an agency searches — folded readings, a kanji
variant, the address narrowing, a search too broad refused with nothing logged, no legal basis, and every
input bounded — while the node keeps serving."""

from __future__ import annotations

import grpc
from conftest import wait_until
from netutil import AGENCY, BUSINESS, agency, counts, residents, rpc_error, terminal

from jukinet.domain.limits import MAX_SEARCH_CANDIDATES
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Db
from jukinet.v1 import admin_pb2, identity_pb2, provision_pb2

P = provision_pb2
BIRTH = identity_pb2.Date(year=1971, month=3, day=4)
MALE = identity_pb2.SEX_MALE


def _register(network, municipality: str, kanji: str, kana: str, n: int = 1) -> list[identity_pb2.IdentityRecord]:
    people = residents(municipality, n)
    for person in people:
        person.name.kanji, person.name.kana = kanji, kana
        person.birth_date.CopyFrom(BIRTH)
        person.sex = MALE
    summary = terminal(network, f"cs:{municipality}").register(people)
    assert summary.stored == n and not summary.refused
    return people


def _arrived(network, kana: str, expected: int) -> None:
    def found() -> bool:
        try:
            return len(agency(network).search(BUSINESS, BIRTH, MALE, kana=kana).candidates) >= expected
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE), exc
            return exc.code() == grpc.StatusCode.FAILED_PRECONDITION and expected > MAX_SEARCH_CANDIDATES

    wait_until(found, what=f"{expected} people named {kana} at the national server")


def test_an_agency_finds_a_resident_by_four_items_and_is_told_how_each_matched(network):
    [nakano] = _register(network, "131148", "高橋 検一", "タカハシ ケンイチ")
    [chiyoda] = _register(network, "131016", "高橋 検一", "タカハシ ケンイチ")
    _arrived(network, "タカハシケンイチ", 2)
    client = agency(network)
    logged = counts(network, "national")[2]

    # half-width katakana with a space, and hiragana with an ideographic space: both find both
    for kana in ("ﾀｶﾊｼ ｹﾝｲﾁ", "たかはし　けんいち"):
        answer = client.search(BUSINESS, BIRTH, MALE, kana=kana)
        assert sorted(c.record.resident_code for c in answer.candidates) == sorted(
            [nakano.resident_code, chiyoda.resident_code]
        )
        for c in answer.candidates:
            assert c.kana.match == P.ITEM_MATCH_NORMALISED and P.NORMALISATION_SPACES not in c.kana.normalisations
            assert c.name.match == P.ITEM_MATCH_NOT_GIVEN and not c.removed
    # 髙橋 finds 高橋 and says it matched through a variant; the address narrows to one
    answer = client.search(BUSINESS, BIRTH, MALE, name="髙橋 検一", municipality_code="131148")
    [c] = answer.candidates
    assert c.record.resident_code == nakano.resident_code and c.record.name.kanji == "高橋 検一"
    assert c.name.match == P.ITEM_MATCH_NORMALISED
    assert list(c.name.normalisations) == [P.NORMALISATION_KANJI_VARIANT]
    assert c.municipality == P.ITEM_MATCH_EXACT  # the 千代田区 namesake: neither provided nor counted
    assert c.record.my_number == ""  # redacted: the row does not permit My Number
    # every candidate provided is in the provision log, with the search as its reference
    assert counts(network, "national")[2] == logged + 5
    entries = terminal(network, "national").provisions(after_id=c.provision_id - 1, limit=1)
    assert [(e.agency, e.resident_code, e.query_kind, e.reference) for e in entries] == [
        (f"agency:{AGENCY}", nakano.resident_code, admin_pb2.QUERY_KIND_FOUR_ITEMS, answer.search_id)
    ]


def test_a_search_too_broad_is_refused_and_logs_nothing(network):
    many = MAX_SEARCH_CANDIDATES + 1
    _register(network, "131016", "佐藤 広範", "サトウ コウハン", many - 1)
    [one] = _register(network, "131148", "佐藤 広範", "サトウ コウハン")
    _arrived(network, "サトウコウハン", many)
    logged = counts(network, "national")[2]
    refused = rpc_error(agency(network).search, BUSINESS, BIRTH, MALE, kana="サトウ　コウハン")
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"more than {MAX_SEARCH_CANDIDATES} people match" in refused.details()
    assert "add the address" in refused.details() and str(many) not in refused.details()  # no count
    assert counts(network, "national")[2] == logged
    narrowed = agency(network).search(BUSINESS, BIRTH, MALE, kana="サトウコウハン", municipality_code="131148")
    assert [c.record.resident_code for c in narrowed.candidates] == [one.resident_code]


def test_no_legal_basis_and_every_bound_are_refused_and_the_node_keeps_serving(network):
    [person] = _register(network, "131148", "渡辺 境界", "ワタナベ キョウカイ")
    _arrived(network, "ワタナベキョウカイ", 1)
    client = agency(network)
    logged = counts(network, "national")[2]
    denied = rpc_error(client.search, "not-in-the-table", BIRTH, MALE, kana="ワタナベキョウカイ")
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "legal table" in denied.details()
    for items, words in (
        ({}, "name or kana"),
        ({"name": "渡" * 101}, "name: 101 characters"),
        ({"kana": "watanabe"}, "kana: character 1"),
        ({"kana": "ワタナベ\u202e"}, "RIGHT-TO-LEFT OVERRIDE"),
        ({"kana": "ーー"}, "is nothing once"),
        ({"kana": "ワタナベ", "municipality_code": "999999"}, "municipality_code"),
        ({"kana": "ワタナベ", "address_text": "1" * 201}, "address_text: 201 characters"),
    ):
        invalid = rpc_error(client.search, BUSINESS, BIRTH, MALE, **items)
        assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT and words in invalid.details(), items
    no_sex = rpc_error(client.search, BUSINESS, BIRTH, identity_pb2.SEX_UNSPECIFIED, kana="ワタナベ")
    assert no_sex.code() == grpc.StatusCode.INVALID_ARGUMENT and "sex" in no_sex.details()
    too_big = rpc_error(client.search, BUSINESS, BIRTH, MALE, kana="ワ" * 2000)  # 6,000 bytes: over 4 KiB
    assert too_big.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counts(network, "national")[2] == logged  # nothing provided, nothing logged
    [c] = client.search(BUSINESS, BIRTH, MALE, kana="わたなべ きょうかい").candidates  # still serving
    assert c.record.resident_code == person.resident_code


def test_a_store_from_before_the_index_is_indexed_when_the_national_server_starts(private_network):
    [person] = _register(private_network, "131148", "中村 再建", "ナカムラ サイケン")
    _arrived(private_network, "ナカムラサイケン", 1)
    spec = private_network.network.topology.node("national")
    private_network.stop_node(spec)
    storage = NodeStorage.open(private_network.network.node_dir(spec) / "data")
    try:  # as a store written before the index existed: records, no index, no state

        def forget(txn) -> None:
            for db in (Db.SEARCH_NAMES, Db.SEARCH_KANA, Db.SEARCH_STATE):
                txn.drop(storage.env.dbs[db], delete=False)

        storage.env.write(forget)
        assert storage.env.entries(Db.SEARCH_KANA) == 0 and storage.records.count() > 0
    finally:
        storage.close()
    private_network.start_node(spec)

    def found() -> list[str]:
        try:
            answer = agency(private_network).search(BUSINESS, BIRTH, MALE, kana="なかむら さいけん")
        except grpc.RpcError as exc:  # while the background pass runs, the search says so
            assert exc.code() == grpc.StatusCode.UNAVAILABLE and "being built" in exc.details(), exc
            return []
        return [c.record.resident_code for c in answer.candidates]

    assert wait_until(found, what="the index rebuilt at start") == [person.resident_code]
