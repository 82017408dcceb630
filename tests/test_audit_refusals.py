"""The audit log under attack, on plain objects (no gRPC, no SoftHSM, a manual clock): caller text is
bounded and escaped wherever it is quoted, refusals of callers without a session are counted so that
no caller grows the log faster than a fixed rate, and every entry stays readable and verifiable."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from pathlib import Path

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_AUDIT_ENTRY_BYTES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.quoting import AUDIT_DETAIL_CHARS, QUOTE_CHARS, bounded, bounded_length, quoted
from jukinet.pki import TrustStore, init_pki, issue_tls_certificate
from jukinet.server.audit import PAGE_BYTES, Auditor
from jukinet.server.refusals import KEYS_PER_CALLER, RefusalTally
from jukinet.server.runtime.peers import Caller
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, operator_pb2

A = audit_pb2
HIDDEN = "\x00\x1b\x7f\x85\u202e\u2066\u200b\ufeff\u2028\U000e0001\ud800"
INTERVAL = 60


def _visible(text: str) -> bool:
    return not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for c in text)


# -- the one helper --------------------------------------------------------------------------------------


def test_short_values_are_shown_whole_with_hidden_characters_escaped() -> None:
    assert bounded("operator:131148:clerk") == "operator:131148:clerk"
    assert bounded("a\x1b[2Jb\u202ec") == "a<U+001B>[2Jb<U+202E>c"
    assert quoted("x\ny") == "'x<U+000A>y'"
    shown = bounded(HIDDEN, 200)
    assert _visible(shown) and shown.count("<U+") == len(HIDDEN)
    assert bounded(shown, 200) == shown  # idempotent while it fits
    assert bounded(HIDDEN).count("<U+") == 8  # escapes count towards the bound


@pytest.mark.parametrize("unit", ["x", "\U00020000", "\x1b", "\u202e"])
def test_long_values_are_cut_with_their_length_and_sha256(unit: str) -> None:
    value = unit * 60_000
    shown = bounded(value, QUOTE_CHARS)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    assert shown.endswith(f"…[60000 characters, SHA-256 {digest}]")
    assert len(shown) <= bounded_length(QUOTE_CHARS) and _visible(shown)


def test_refusals_quote_a_huge_node_id_once_and_bounded() -> None:
    for text in ("operator:131148:" + "x" * 30_000_000, "\x1b" * 60_000, "nokind" * 10_000):
        with pytest.raises(Rejected) as exc:
            NodeId.parse(text)
        assert len(str(exc.value)) < 500 and _visible(str(exc.value)), str(exc.value)[:200]


# -- entries ---------------------------------------------------------------------------------------------


@pytest.fixture
def bench(tmp_path: Path):
    pki = tmp_path / "pki"
    init_pki(pki)
    clock = ManualClock()
    trust = TrustStore.load(pki, clock=clock)
    storage = NodeStorage.open(tmp_path / "data")

    def caller(identity: str, kind: str = "operator") -> Caller:
        cert, _ = issue_tls_certificate(pki, kind, [identity], tmp_path / identity.replace(":", "-"))
        return Caller(trust.identify(cert.read_bytes().split(b"-----END CERTIFICATE-----")[0] + _END))

    yield storage, clock, Auditor(storage, clock, INTERVAL), caller
    storage.close()


_END = b"-----END CERTIFICATE-----\n"


def _entries(storage: NodeStorage, start: int = 0) -> list[audit_pb2.AuditEntry]:
    log = storage.audit
    return [audit_pb2.AuditEntry.FromString(e) for e in log.entries(start, log.size())]


def test_an_entry_is_bounded_whatever_its_fields_hold(bench) -> None:
    storage, _, auditor, caller = bench
    worst = ("\U00020000" * 7 + "\x1b") * 8_000  # 64,000 characters: 4-byte letters and controls
    leaf = auditor.entry(A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_DENIED, worst, worst, worst, worst)
    assert len(leaf) <= MAX_AUDIT_ENTRY_BYTES
    entry = audit_pb2.AuditEntry.FromString(leaf)
    for text in (entry.actor, entry.terminal, entry.target, entry.detail):
        assert _visible(text) and "64000 characters, SHA-256" in text
    assert len(entry.detail) <= bounded_length(AUDIT_DETAIL_CHARS)
    # Through the refusal path too: the caller's text reaches the log only as a bounded summary.
    terminal = caller("terminal:131148:desk")
    huge = Rejected(Problem.INVALID, "operator id " + "y" * 60_000)
    auditor.refused(A.AUDIT_ACTION_LOGIN, terminal, huge, target="operator:131148:" + "y" * 60_000)
    (entry,) = _entries(storage)
    assert entry.ByteSize() < 2_000 and entry.target.startswith("operator:131148:yyy")
    assert entry.terminal == entry.actor == "terminal:131148:desk"


def test_a_flood_of_refusals_is_one_entry_in_full_and_one_count_per_interval(bench) -> None:
    storage, clock, auditor, caller = bench
    terminal = caller("terminal:131148:flood")
    for i in range(1000):
        exc = Rejected(Problem.NOT_FOUND, f"no operator 'operator:131148:x{i}' is enrolled here")
        auditor.refused(A.AUDIT_ACTION_LOGIN, terminal, exc, f"operator:131148:x{i}")
        clock.advance(0.001)
    assert storage.audit.size() == 1  # the first, in full, before it was answered
    assert auditor.flush_refusals() == 0  # the interval has not ended
    clock.advance(INTERVAL)
    assert auditor.flush_refusals() == 1
    first, counted = _entries(storage)
    assert first.target == "operator:131148:x0" and first.outcome == A.AUDIT_OUTCOME_FAILED
    assert counted.action == A.AUDIT_ACTION_LOGIN and counted.target == "operator:131148:x999"
    assert counted.detail.startswith("terminal:131148:flood refused 1000 times for NOT_FOUND between ")
    assert "the first is entry 0; last: NOT_FOUND: no operator 'operator:131148:x999'" in counted.detail
    # The next refusal opens a new interval: it is written in full again.
    auditor.refused(A.AUDIT_ACTION_LOGIN, terminal, Rejected(Problem.NOT_FOUND, "again"))
    assert storage.audit.size() == 3 and auditor.flush_refusals(everything=True) == 0
    assert storage.audit.verify().ok


def test_an_operator_with_a_session_is_audited_call_by_call(bench) -> None:
    storage, _, auditor, caller = bench
    operator = caller("terminal:131148:desk")
    operator._claims = operator_pb2.SessionClaims(operator_id="operator:131148:clerk")  # as verified by the guard
    for _ in range(5):
        auditor.refused(A.AUDIT_ACTION_RECORD_CHANGE, operator, Rejected(Problem.INVALID, "record 0: bad"))
    assert [e.actor for e in _entries(storage)] == ["operator:131148:clerk"] * 5


def test_no_caller_grows_the_log_faster_than_the_stated_bound(bench) -> None:
    """Every (action, problem) a caller could be refused for, as fast as it likes, for ten intervals:
    the log grows by at most 2 × (KEYS_PER_CALLER + 1) entries per interval, each within the entry bound."""
    storage, clock, auditor, caller = bench
    attacker = caller("agency:7123456789012", kind="agency")
    actions = [v.number for v in A.AuditAction.DESCRIPTOR.values if v.number]
    intervals, step = 10, 2.0
    for _ in range(int(intervals * INTERVAL / step)):
        for action in actions:
            for problem in Problem:
                auditor.refused(action, attacker, Rejected(problem, "z" * 5_000), target="\x1b" * 5_000)
        clock.advance(step)
        auditor.flush_refusals()  # the node does this every second
    auditor.flush_refusals(everything=True)
    entries = _entries(storage)
    per_interval = 2 * (KEYS_PER_CALLER + 1)
    assert len(entries) <= per_interval * (intervals + 1)
    assert len(entries) >= intervals * (KEYS_PER_CALLER + 1)  # counted, not dropped
    total_bytes = sum(e.ByteSize() for e in entries)
    assert total_bytes <= per_interval * (intervals + 1) * MAX_AUDIT_ENTRY_BYTES
    refused = len(actions) * len(Problem) * int(intervals * INTERVAL / step)
    counted = sum(int(e.detail.split(" refused ")[1].split(" ")[0]) for e in entries if " refused " in e.detail)
    assert counted == refused  # every refusal is in some count (the entries in full are counted too)
    assert storage.audit.verify().ok


def test_many_callers_are_tracked_up_to_a_bound(bench) -> None:
    _, clock, _, _ = bench
    tally = RefusalTally(clock, INTERVAL, keys_per_caller=2, max_callers=3)
    firsts = [tally.note(f"terminal:131148:t{i}", 1, Problem.DENIED, "no") for i in range(10)]
    assert sum(k is not None for k in firsts) == 4  # three callers and one shared key for the rest
    assert tally.pending() == 4
    clock.advance(INTERVAL)
    (shared,) = [a for a in tally.due() if a.count > 1]
    assert shared.caller == "(other callers)" and shared.count == 7


def test_audit_pages_are_cut_by_bytes_and_every_entry_reads_back(bench) -> None:
    storage, _, auditor, caller = bench
    terminal = caller("terminal:131148:desk")
    big = auditor.entry(A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_DENIED, "\U00020000" * 9999, "t", "\U00020000" * 9999,
                        "\U00020000" * 9999)  # fmt: skip
    count = math.ceil(2 * PAGE_BYTES / len(big)) + 3
    storage.env.write(lambda txn: storage.audit.append_many(txn, [big] * count))
    auditor.record(A.AUDIT_ACTION_LOGOUT, A.AUDIT_OUTCOME_SUCCESS, terminal)
    size = storage.audit.size()
    pages, start = [], 0
    while start < size:
        page = storage.audit.entries(start, min(size, start + 1000), max_bytes=PAGE_BYTES)
        assert page and sum(len(e) for e in page) <= PAGE_BYTES
        pages.append(page)
        start += len(page)
    assert len(pages) >= 3 and sum(len(p) for p in pages) == size
    assert [e for p in pages for e in p] == storage.audit.entries(0, size)
