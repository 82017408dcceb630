"""Legal tables as data (no gRPC, no SoftHSM): every row of a directory is checked and one bad row refuses
the directory whole; a server decides each lookup with the tables it held when the lookup started; a
business without my_number may not ask by My Number; a prefecture row reaches its own prefecture's
residents only; agency identifiers are stable, per agency, follow a 住民票コード変更, and another agency's
resolves to nothing.

The MAC here is a software HMAC (this unit test only): tests/test_legal_e2e.py derives them in the
national token between real node processes.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import ResidentCode, generate_resident_code
from jukinet.domain.directory import Directory
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import (
    AGENCY_IDENTIFIER_CHARS,
    LegalTables,
    TableRow,
    agency_identifier_from_mac,
    agency_identifier_input,
    agency_identifier_problem,
)
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.audit import Auditor
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.prefecture.provision import PrefectureScope
from jukinet.server.provision import Provision, Scope
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, directory_pb2, identity_pb2

PENSION, INSURER, TOKYO, OTHER = "7123456789012", "2300000000001", "5400000000013", "4400000000014"
Row = directory_pb2.LegalTableRow


def _directory(*rows: Row) -> directory_pb2.NetworkDirectory:
    message = directory_pb2.NetworkDirectory(version=1)
    message.issued_at.FromMilliseconds(1)
    message.expires_at.FromMilliseconds(2)
    for i, ids in enumerate((["national"], ["pref:13", "pref:14"])):
        message.nodes.add(node_ids=ids, address=f"127.0.0.1:{50051 + i}", tls_certificate_sha256=b"\1" * 32,
                          signing_certificate_sha256=b"\2" * 32)  # fmt: skip
    message.legal_table.extend(rows)
    return message


NATIONAL = Row(table="別表第1", agency=PENSION, business="pension-benefit", fields=["resident_code", "name"])
PSEUDONYM = Row(table="別表第1", agency=INSURER, business="health", fields=["name", "address"],
                identifier="agency_identifier")  # fmt: skip
PREFECTURE = Row(table="別表第6", prefecture="pref:13", agency=TOKYO, business="own-use",
                 fields=["resident_code", "name", "address"])  # fmt: skip


def _with(row: Row, **changes) -> Row:
    out = Row()
    out.CopyFrom(row)
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(out, name)[:]
            getattr(out, name).extend(value)
        else:
            setattr(out, name, value)
    return out


def test_a_directory_of_good_rows_of_every_table_verifies() -> None:
    directory = Directory.from_message(_directory(NATIONAL, PSEUDONYM, PREFECTURE, _with(PREFECTURE, table="別表第5")))
    tables = LegalTables.from_directory(directory.message)
    assert tables.national(PENSION, "pension-benefit").fields == {"resident_code", "name"}
    assert tables.national(INSURER, "health").pseudonymous
    assert tables.national(TOKYO, "own-use") is None  # a prefecture's row is not 別表第1's
    assert [r.table for r in tables.prefectural(["pref:13"], TOKYO, "own-use")] == ["別表第5", "別表第6"]
    assert tables.prefectural(["pref:14"], TOKYO, "own-use") == []


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (_with(NATIONAL, table="別表第2"), "table '別表第2' is not one of"),
        (_with(NATIONAL, table=""), "table '' is not one of"),
        (_with(PREFECTURE, prefecture=""), "a row of 別表第6 names its prefecture (pref:NN), not ''"),
        (_with(PREFECTURE, prefecture="cs:131148"), "names its prefecture (pref:NN), not 'cs:131148'"),
        (_with(NATIONAL, prefecture="pref:13"), "別表第1 is the national table: its rows name no prefecture"),
        (_with(NATIONAL, identifier="pseudonym"), "identifier 'pseudonym' is not one of"),
        (_with(PREFECTURE, identifier="agency_identifier"), "agency identifiers are the national server's"),
        (_with(PSEUDONYM, fields=["name", "my_number"]), "may not permit my_number"),
        (_with(PSEUDONYM, fields=["resident_code"]), "may not permit resident_code"),
        (_with(NATIONAL, fields=["name", "photo"]), "unknown field groups 'photo'"),
        (_with(NATIONAL, fields=[]), "one or more field groups"),
        (_with(NATIONAL, fields=["name", "name"]), "listed twice"),
        (_with(NATIONAL, agency="7123456789013"), "agency: corporate number"),
        (_with(NATIONAL, business=""), "business must be"),
    ],
)
def test_one_bad_row_refuses_the_directory_whole(row: Row, words: str) -> None:
    with pytest.raises(Rejected) as info:
        Directory.from_message(_directory(NATIONAL, row))
    assert info.value.problem is Problem.INVALID
    assert "legal_table[1]" in str(info.value) and words in str(info.value)


def test_the_same_row_twice_in_one_table_is_refused_but_not_across_prefectures() -> None:
    with pytest.raises(Rejected, match="別表第6 of pref:13 lists agency 5400000000013 for 'own-use' twice"):
        Directory.from_message(_directory(PREFECTURE, PREFECTURE))
    Directory.from_message(_directory(PREFECTURE, _with(PREFECTURE, prefecture="pref:14")))


def test_a_pseudonymous_row_never_redacts_to_a_number() -> None:
    record = synthetic_resident(random.Random(3), "131148", numbered=True)
    row = TableRow.from_message(PSEUDONYM)
    out = row.redact(record)
    assert out.resident_code == "" and out.my_number == ""
    assert out.name == record.name and out.address == record.address
    assert row.items() == ["address", "name", "agency_identifier"]
    # Even a row object built around the check does not hand the numbers out.
    forced = TableRow(row.agency, "x", "", frozenset({"resident_code", "my_number"}), identifier=row.identifier)
    assert forced.redact(record) == identity_pb2.IdentityRecord()


def test_the_identifier_form_is_fixed_and_printable() -> None:
    mac = hashlib.sha256(b"x").digest()
    identifier = agency_identifier_from_mac(mac)
    assert len(identifier) == AGENCY_IDENTIFIER_CHARS and agency_identifier_problem(identifier) is None
    assert agency_identifier_problem(identifier.lower()) and agency_identifier_problem(identifier[:-1])
    assert agency_identifier_problem(identifier[:-1] + "1")  # not base32
    message = agency_identifier_input(INSURER, "12345678903")
    assert message == b"jukinet-agency-identifier-v1\x00" + INSURER.encode() + b"\x0012345678903"


# -- a server's lookups, on a real LMDB store -----------------------------------------------------------


class _Env:
    def __init__(self, tmp_path: Path) -> None:
        self.storage = NodeStorage.open(tmp_path / "data")
        self.clock = ManualClock()
        self.key = b"k" * 32
        self.token_calls: list[int] = []
        self.identifiers = AgencyIdentifiers(self.storage, self.macs)
        self.tables = LegalTables.from_directory(_directory(NATIONAL, PSEUDONYM, PREFECTURE))

    def macs(self, inputs):
        self.token_calls.append(len(inputs))
        return [hmac.new(self.key, data, hashlib.sha256).digest() for data in inputs]

    def resident(self, municipality: str, seed: int) -> identity_pb2.IdentityRecord:
        record = synthetic_resident(random.Random(seed), municipality, numbered=True)
        record.status = identity_pb2.RECORD_STATUS_ACTIVE
        self.storage.env.write(lambda txn: self.storage.records.put(txn, record, None))
        return record

    def provision(self, scope: Scope | None = None) -> Provision:
        ids = None if isinstance(scope, PrefectureScope) else self.identifiers
        return Provision(self.storage, lambda: self.tables, Auditor(self.storage, self.clock), self.clock, scope, ids)


@pytest.fixture
def env(tmp_path: Path):
    made = _Env(tmp_path)
    yield made
    made.storage.close()


AGENCY = NodeId.agency(PENSION)
INSURER_ID = NodeId.agency(INSURER)


def test_a_business_without_my_number_may_not_ask_by_my_number(env: _Env) -> None:
    record = env.resident("131148", 1)
    provision = env.provision()
    before = env.storage.provisions.count()
    with pytest.raises(Rejected) as info:
        provision.by_my_number(AGENCY, "pension-benefit", record.my_number)
    assert info.value.problem is Problem.DENIED
    assert str(AGENCY) in str(info.value) and "pension-benefit" in str(info.value)
    assert env.storage.provisions.count() == before
    assert provision.by_resident_code(AGENCY, "pension-benefit", record.resident_code).record.my_number == ""


def test_a_business_without_resident_code_may_not_ask_by_resident_code(env: _Env) -> None:
    """Else a code is an oracle: whether it exists, and its agency identifier (a pseudonymous row) or My
    Number (a row with my_number but not resident_code) — the 住民票コード would join two agencies' data."""
    record = env.resident("131148", 3)
    provision = env.provision()
    before = env.storage.provisions.count()
    for code in (record.resident_code, "12345678903"):  # held, and not held: refused alike, before any read
        with pytest.raises(Rejected) as info:
            provision.by_resident_code(INSURER_ID, "health", code)
        assert info.value.problem is Problem.DENIED and "resident_code" in str(info.value)
    assert env.storage.provisions.count() == before


def test_a_lookup_decides_with_the_tables_it_started_with(env: _Env) -> None:
    record = env.resident("131148", 2)
    provision = env.provision()
    env.tables = LegalTables.from_directory(_directory(PSEUDONYM))  # a new version without the pension row
    with pytest.raises(Rejected) as info:
        provision.by_resident_code(AGENCY, "pension-benefit", record.resident_code)
    assert info.value.problem is Problem.DENIED
    # A call that took the tables keeps them, whatever replaces them meanwhile.
    held = LegalTables.from_directory(_directory(NATIONAL))
    calls = iter([held])

    def swapping():
        got = next(calls)
        env.tables = LegalTables()  # the next version, with no rows at all
        return got

    mid = Provision(env.storage, swapping, Auditor(env.storage, env.clock), env.clock)
    assert mid.by_resident_code(AGENCY, "pension-benefit", record.resident_code).record.name == record.name


def test_a_prefecture_row_reaches_its_own_prefecture_only(env: _Env) -> None:
    tokyo, kanagawa = env.resident("131148", 3), env.resident("141003", 4)
    centre = env.provision(PrefectureScope([NodeId.parse("pref:13"), NodeId.parse("pref:14")]))
    provided = centre.by_resident_code(NodeId.agency(TOKYO), "own-use", tokyo.resident_code)
    assert provided.record.address == tokyo.address and provided.record.my_number == ""
    with pytest.raises(Rejected) as info:
        centre.by_resident_code(NodeId.agency(TOKYO), "own-use", kanagawa.resident_code)
    assert info.value.problem is Problem.NOT_FOUND  # held here, but not 東京都's resident
    kanagawa_only = env.provision(PrefectureScope([NodeId.parse("pref:14")]))
    with pytest.raises(Rejected) as info:
        kanagawa_only.by_resident_code(NodeId.agency(TOKYO), "own-use", tokyo.resident_code)
    assert info.value.problem is Problem.DENIED and "own-use" in str(info.value)
    with pytest.raises(Rejected) as info:  # 別表第1 rows give nothing at a prefecture
        centre.by_resident_code(AGENCY, "pension-benefit", tokyo.resident_code)
    assert info.value.problem is Problem.DENIED
    with pytest.raises(Rejected) as info:
        centre.by_agency_identifier(NodeId.agency(TOKYO), "own-use", "A" * 32)
    assert info.value.problem is Problem.DENIED


def test_agency_identifiers_per_agency_stable_and_resolved_only_by_their_agency(env: _Env) -> None:
    a, b = env.resident("131148", 5), env.resident("131148", 6)
    ids = env.identifiers
    first = ids.for_codes(INSURER, [a.resident_code, b.resident_code, "12345678903"])
    assert set(first) == {a.resident_code, b.resident_code}  # no record, no identifier
    assert env.token_calls == [2]  # one token job for the batch
    other = ids.for_codes(PENSION, [a.resident_code])
    assert other[a.resident_code] != first[a.resident_code] != first[b.resident_code]
    for identifier in (*first.values(), *other.values()):
        assert agency_identifier_problem(identifier) is None
        assert a.resident_code not in identifier and b.resident_code not in identifier
    assert ids.for_codes(NodeId.agency(INSURER), [a.resident_code]) == {a.resident_code: first[a.resident_code]}
    assert env.token_calls == [2, 1]  # repeats come from the store
    assert ids.resolve(INSURER, first[a.resident_code]) == a.resident_code
    assert ids.resolve(PENSION, first[a.resident_code]) is None  # another agency's: nobody
    assert ids.resolve(INSURER, "A" * 32) is None
    with pytest.raises(Rejected) as info:
        ids.resolve(INSURER, a.resident_code)
    assert info.value.problem is Problem.INVALID


def test_an_agency_identifier_survives_a_resident_code_change(env: _Env) -> None:
    old = env.resident("131148", 7)
    identifier = env.identifiers.for_codes(INSURER, [old.resident_code])[old.resident_code]
    new = identity_pb2.IdentityRecord()
    new.CopyFrom(old)
    new.resident_code = str(ResidentCode.parse(generate_resident_code(random.Random(70))))

    def change(txn) -> None:
        env.storage.numbers.link_change(txn, old.resident_code, new.resident_code)
        env.storage.records.put(txn, new, None)

    env.storage.env.write(change)
    assert env.identifiers.resolve(INSURER, identifier) == new.resident_code
    assert env.identifiers.for_codes(INSURER, [new.resident_code]) == {new.resident_code: identifier}
    provided = env.provision().by_agency_identifier(INSURER_ID, "health", identifier)
    assert provided.agency_identifier == identifier and provided.record.resident_code == ""
    entry = env.storage.provisions.page(0, 10)[-1]
    assert (entry.resident_code, entry.query_kind) == (new.resident_code, admin_pb2.QUERY_KIND_AGENCY_IDENTIFIER)
    assert list(entry.items) == ["address", "name", "agency_identifier"]
