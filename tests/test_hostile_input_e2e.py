"""Hostile input at a running CS and prefecture: oversized and invisible-character text is refused with
the field and position, nothing is stored, a padded batch cannot wedge the relay, and the largest valid
record travels all the way to the national server."""

from __future__ import annotations

import grpc
import pytest
from conftest import wait_until
from netutil import BUSINESS, address, agency, counts, designated, residents, simulated, terminal

from jukinet.devnet.simulated import change_items
from jukinet.domain.limits import TEXT_LIMITS
from jukinet.pki import seal_payload
from jukinet.server.runtime.batches import BATCH_TYPE, encode_link_batch

CS = "cs:131148"


def _refused(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call(*args)
    return refused.value


@pytest.mark.parametrize(
    ("field", "value", "code", "says"),
    [
        # finding 1: 33 MB was OK. The limit is one record and its local items (docs/LIMITS.md).
        ("alias", "字" * 30_000, grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 7168"),
        ("alias", "字" * 101, grpc.StatusCode.INVALID_ARGUMENT, "name.alias: 101 characters, at most 100"),
        ("kanji", "中野\x1b[2J太郎", grpc.StatusCode.INVALID_ARGUMENT, "name.kanji: character 3 (U+001B"),
        ("kanji", "中野\x00太郎", grpc.StatusCode.INVALID_ARGUMENT, "name.kanji: character 3 (U+0000"),
        ("kanji", "中野\u202e郎太", grpc.StatusCode.INVALID_ARGUMENT, "RIGHT-TO-LEFT OVERRIDE"),
        ("former_surname", "山田\n鈴木", grpc.StatusCode.INVALID_ARGUMENT, "name.former_surname: character 3"),
    ],
)
def test_hostile_text_is_refused_and_nothing_is_stored(network, field, value, code, says):
    cs = terminal(network, CS)
    before = counts(network, CS)
    record = residents("131148", 1)[0]
    setattr(record.name, field, value)
    refused = _refused(cs.record_change, record)
    assert refused.code() == code and says in refused.details(), refused.details()
    assert counts(network, CS) == before
    good = residents("131148", 2)
    done = cs.register([*good, record])  # a chunk of three fits its limit: the row is checked
    assert (done.stored, sorted(done.refused)) == (2, [2])  # that row refused by field, the others stored
    assert f"name.{field}" in [p.field for p in done.refused[2]]
    assert counts(network, CS)[:2] == (before[0] + 2, before[1] + 2)
    # The CS assigns the codes: the refused row got none, the two records stored are the good rows.
    assert sorted(done.assigned) == [0, 1] and record.resident_code == ""
    assert [cs.resident(r.resident_code).name for r in good] == [r.name for r in good]
    assert cs.status().node_ids == [CS]


def test_an_address_with_control_characters_is_refused(network):
    record = residents("131148", 1)[0]
    record.address.text = "1丁目\r\n2番"
    refused = _refused(terminal(network, CS).record_change, record)
    assert "address.text: character 4 (U+000D control character)" in refused.details()


def test_the_largest_valid_record_reaches_the_national_server(network):
    record = residents("131148", 1)[0]
    big = "\U00020000"  # 4 bytes in UTF-8
    for field in ("kanji", "former_surname", "alias"):
        setattr(record.name, field, big * TEXT_LIMITS[f"name.{field}"].max_chars)
    record.name.kana = "ヴ" * TEXT_LIMITS["name.kana"].max_chars
    record.address.text = big * TEXT_LIMITS["address.text"].max_chars
    terminal(network, CS).record_change(record)
    found: list = []

    def at_national() -> bool:
        try:
            found.append(agency(network).by_resident_code(BUSINESS, record.resident_code))
        except grpc.RpcError:
            return False
        return True

    wait_until(at_national, 30, "the largest record at the national server")
    assert found[-1].record.name.alias == record.name.alias


def test_a_padded_cs_batch_cannot_wedge_the_relay(network, tmp_path):
    """A CS batch that fits a Deliver message but not a relay to the national server is refused."""
    evil = simulated(network, ["cs:131130"], tmp_path / "evil")
    block, records = designated(network, evil, 1)  # its items are ones it may send: only the padding is wrong
    items = [block, *change_items("cs:131130", records, 2)]
    payload = encode_link_batch("cs:131130", "pref:13", list(enumerate(items, 1)), 1)
    padded = payload + bytes([(15 << 3) | 2]) + bytes([0x80, 0x80, 0x60]) + b"\0" * (0x60 << 14)  # ~1.5 MiB
    envelope = seal_payload(evil.signer, BATCH_TYPE, padded, evil.certificate_der)
    before = counts(network, "pref:13")
    refused = _refused(evil.deliver, address(network, "pref:13"), "pref:13", [envelope])
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "a CS batch may be at most 1048576" in refused.details()
    assert counts(network, "pref:13") == before
    assert len(evil.deliver(address(network, "pref:13"), "pref:13", [evil.batch("pref:13", items)])) == 1
