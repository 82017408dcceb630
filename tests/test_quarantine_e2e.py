"""A poison notice never blocks a link: the prefecture refuses it for good, the CS quarantines it and
carries on with the rest; an operator lists, retries and drops it (role manage-links, audited).

The poison is a notice the CS queued before the rule that refuses it existed (a name with a
right-to-left override, written into the CS's queue while the CS is stopped, as an older release
would have); the prefecture's rules refuse it.
"""

from __future__ import annotations

import grpc
import pytest
from conftest import wait_until
from cryptography import x509
from netutil import address, bare_terminal, counts, designated, link, residents, simulated, terminal

from jukinet.devnet.simulated import change_items
from jukinet.pki import revoke
from jukinet.server.runtime.batches import ChangeNoticeEncoder, change_notice_item
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.v1 import audit_pb2

CS, PREF = "cs:131148", "pref:13"


def _reserved(running) -> int:
    """How many designated, unused codes the running CS holds (its store, read only)."""
    storage = NodeStorage.open(running.network.node_dir(running.network.topology.node(CS)) / "data", readonly=True)
    try:
        return storage.reserve.size()
    finally:
        storage.close()


def _inject_poison(running) -> str:
    """Queue a notice with a hidden character at the stopped CS; returns its resident code. Apart from
    the character it is a notice the CS may send: a code from its reserve of designated codes (after the
    code_block item that told the prefecture), its My Number still pending."""
    spec = running.network.topology.node(CS)
    wait_until(lambda: _reserved(running) > 0, 30, "the CS's reserve of designated codes")
    running.stop_node(spec)
    record = residents("131148", 1)[0]
    record.name.kanji = "中野\u202e郎太"
    storage = NodeStorage.open(running.network.node_dir(spec) / "data")
    try:
        [record.resident_code] = storage.reserve.first(1)

        def queue(txn) -> None:
            assert storage.reserve.take(txn, record.resident_code)
            sequence = storage.env.reserve(txn, Counter.CHANGE, 1)
            notice = ChangeNoticeEncoder(CS, 1_790_000_000_000).encode(sequence, record.SerializeToString())
            storage.queues.enqueue(txn, PREF, [change_notice_item(notice)])

        storage.env.write(queue)
    finally:
        storage.close()
    running.start_node(spec)
    return record.resident_code


@pytest.fixture(scope="module")
def poisoned(private_network):
    return _inject_poison(private_network)


def test_the_link_quarantines_the_poison_and_carries_on(private_network, poisoned):
    running = private_network
    before = counts(running, "national")[0]
    terminal(running, CS).register(residents("131148", 20))
    wait_until(lambda: counts(running, "national")[0] == before + 20, 30, "20 good records past the poison")
    state = link(running, CS, PREF)
    assert state.quarantined == 1 and state.pending == 0, state
    items = terminal(running, CS).quarantine(PREF)
    assert [(i.kind, i.problem) for i in items] == [("change_notice", "invalid_argument")]
    assert poisoned in items[0].summary
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in items[0].reason
    assert "resident_code" not in items[0].reason and "my_number" not in items[0].reason  # that alone
    assert not items[0].item  # listings carry no item bytes


def test_quarantine_needs_the_manage_links_role(private_network, poisoned):
    with pytest.raises(grpc.RpcError) as refused:
        bare_terminal(private_network, CS).quarantine(PREF)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as refused:
        bare_terminal(private_network, CS).drop_quarantined(PREF)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert terminal(private_network, CS).quarantine(PREF)  # still there


def test_retry_puts_it_back_and_the_destination_refuses_it_again(private_network, poisoned):
    running = private_network
    cs = terminal(running, CS)
    [item] = cs.quarantine(PREF)
    reply = cs.retry_quarantined(PREF)
    assert reply.items == 1 and reply.first_position > item.position
    wait_until(lambda: [i.position for i in cs.quarantine(PREF)] == [reply.first_position], 30, "re-quarantined")
    with pytest.raises(grpc.RpcError) as missing:
        cs.retry_quarantined(PREF, [item.position])
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_drop_gives_it_up_and_the_audit_log_keeps_its_digest(private_network, poisoned):
    running = private_network
    cs = terminal(running, CS)
    assert cs.drop_quarantined(PREF).items == 1
    assert list(cs.quarantine(PREF)) == []
    assert link(running, CS, PREF).quarantined == 0
    storage_dir = running.network.node_dir(running.network.topology.node(CS)) / "data"
    storage = NodeStorage.open(storage_dir, readonly=True)
    try:
        entries = [audit_pb2.AuditEntry.FromString(e) for e in storage.audit.entries(0, storage.audit.size())]
    finally:
        storage.close()
    actions = [(e.action, e.outcome, e.target) for e in entries]
    assert (audit_pb2.AUDIT_ACTION_QUARANTINE_RETRY, audit_pb2.AUDIT_OUTCOME_SUCCESS, PREF) in actions
    dropped = [e for e in entries if e.action == audit_pb2.AUDIT_ACTION_QUARANTINE_DROP]
    assert [e.outcome for e in dropped] == [audit_pb2.AUDIT_OUTCOME_DENIED, audit_pb2.AUDIT_OUTCOME_SUCCESS]
    dropped = dropped[1:]
    assert len(dropped) == 1 and "sha256:" in dropped[0].detail and poisoned in dropped[0].detail


def test_a_relayed_batch_the_national_server_refuses_waits_at_the_prefecture(private_network, tmp_path):
    """A CS batch the prefecture stored while the CS's signing key was valid, refused at the national
    server once that key is revoked: the prefecture quarantines it and other CS nodes' notices flow."""
    running = private_network
    national = running.network.topology.node("national")
    cs = simulated(running, ["cs:131130"], tmp_path / "cs")
    block, records = designated(running, cs, 2)  # while the national server is up: codes it may send
    running.stop_node(national)
    batch = cs.batch(PREF, [block, *change_items("cs:131130", records, 2)])  # its block first, as a CS queues
    assert len(cs.deliver(address(running, PREF), PREF, [batch])) == 1
    revoke(running.network.pki_dir, "node", x509.load_der_x509_certificate(cs.certificate_der).serial_number)
    running.start_node(national)
    before = counts(running, "national")[0]
    for record in residents("131148", 3):
        terminal(running, CS).record_change(record)
    wait_until(lambda: counts(running, "national")[0] == before + 3, 30, "cs:131148's notices past the refused one")
    wait_until(lambda: link(running, PREF, "national").quarantined == 1, 10, "the relayed batch set aside")
    [item] = terminal(running, PREF).quarantine("national")
    assert item.kind == "relayed_batch" and item.summary.startswith("cs:131130 → pref:13 #1..3")
    assert item.problem == "unauthenticated" and "revoked" in item.reason
