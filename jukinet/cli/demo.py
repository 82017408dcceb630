"""``jukinet demo``: a short scenario a person can follow on screen, on a real network of processes."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import grpc
import numpy as np
from cryptography import x509

from jukinet.cli import demo_moves, demo_provision
from jukinet.cli.demo_copies import wide_area_copy
from jukinet.cli.demo_disclosure import disclosure
from jukinet.cli.views import describe, node_statuses, status_lines
from jukinet.devnet.access import agency_client, push_client, terminal_for
from jukinet.devnet.operators import bootstrap_operators, enroll_operator, issue_card, log_in
from jukinet.devnet.provision import provision
from jukinet.devnet.supervisor import start_network
from jukinet.devnet.topology import Topology
from jukinet.domain.codes import generate_resident_code
from jukinet.domain.synthetic import synthetic_resident
from jukinet.hsm import TokenWorker, find_softhsm_module
from jukinet.merkle import leaf_hash, verify_inclusion
from jukinet.server.audit import check_tree_head
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2

PENSION_BUSINESS = "pension-benefit"
UNLISTED_BUSINESS = "tax-assessment"
INSURER, INSURER_BUSINESS = "2300000000001", "health-insurance"  # a row of 別表第1 naming by agency identifier


def _say(text: str, pause: float = 0.0) -> None:
    print(text, flush=True)
    if pause:
        time.sleep(pause)


def run_demo(state: Path, pause: float = 0.0) -> int:
    started = time.monotonic()
    if state.exists():
        shutil.rmtree(state)  # the demo always starts from an empty network
    topology = Topology.default(free_ports=True, bundled="demo")
    _say("== 1. Provisioning: development PKI, one SoftHSM token per node, certificates")
    net = provision(state, topology)
    _say(f"   state directory {net.state}; each node's signing key was generated inside its token", pause)

    _say("== 2. Starting the national server, one prefecture centre (東京都, 神奈川県), three CS nodes and the card")
    _say("   management and JPKI services, each a process; every node fetches the signed network directory")
    with start_network(net) as running:
        for node in running.processes.values():
            _say(f"   {node.spec.name:>10}  pid {node.process.pid:<7} mTLS on {node.spec.listen}")
        time.sleep(pause)

        rng = random.Random(2026)
        nakano, chiyoda, nishi = (topology.node(f"cs:{c}") for c in ("131148", "131016", "141038"))
        _say("== 3. Operators: IC card (a token of their own) + biometric, enrolled by each node's administrator")
        reader = TokenWorker(find_softhsm_module(), net.softhsm.conf_path)  # the terminals' card reader
        sensor = np.random.default_rng(2026)  # a scripted scenario: the same people and captures every run
        admins = bootstrap_operators(reader, net, rng=sensor)
        _say("   each node's first administrator was enrolled from the site terminal and logged in")
        clerks = {}
        for spec in (nakano, chiyoda):
            _, admin_terminal = admins[str(spec.node_ids[0])]
            kit = issue_card(reader, net, f"operator:{spec.site}:clerk-01", "246810", sensor)
            info = enroll_operator(reader, admin_terminal, kit, ["register-residents"], sensor)
            clerk = terminal_for(net, spec)
            claims = log_in(reader, clerk, kit, rng=sensor, attempts=3)
            clerks[spec.name] = clerk
            _say(f"   {spec.name}: {info.operator_id} enrolled (card serial {info.card_serial[:12]}…); PIN unlocked "
                 f"the card, the card signed the challenge, the biometric matched: session for "
                 f"{', '.join(claims.roles)}")  # fmt: skip
        try:
            terminal_for(net, nakano).record_change(synthetic_resident(rng, nakano.node_ids[0].code))
        except grpc.RpcError as exc:
            _say(f"   without a session the CS refuses: {exc.code().name}: {exc.details()}", pause)

        _say("== 4. Clerks record residents at their municipal counters; the CS takes each new 住民票コード from the")
        _say("   block the national server designated to it, and the national server generates the My Number")
        first: identity_pb2.IdentityRecord | None = None
        for spec, reasons in (
            (nakano, [identity_pb2.CHANGE_REASON_BIRTH, identity_pb2.CHANGE_REASON_MOVE_IN]),
            (chiyoda, [identity_pb2.CHANGE_REASON_MOVE_IN]),
        ):
            terminal = clerks[spec.name]
            for reason in reasons:
                record = synthetic_resident(rng, spec.node_ids[0].code, reason)
                reply = terminal.record_change(record)
                first = first or reply.record
                _say(f"   {spec.name}: {describe(reply.record)} (notice #{reply.sequence})")
        assert first is not None
        chiyoda_resident = reply.record
        born = demo_moves.numbers(clerks[nakano.name], chiyoda_resident, _say)
        bulk = [synthetic_resident(rng, chiyoda.node_ids[0].code) for _ in range(500)]
        summary = clerks[chiyoda.name].register(bulk, chunk_size=250)
        _say(
            f"   {chiyoda.name}: bulk registration of {summary.stored} residents in {summary.chunks} chunks",
            pause,
        )

        _say("== 5. The changes travel CS → prefecture → national as signed batches, each handed over against a")
        _say("   receipt signed by the receiver's token; the prefecture relays each CS's batch with the CS's own")
        _say("   signature, which the national server checks too")
        expected = 4 + len(bulk)
        deadline = time.monotonic() + 30
        while True:
            statuses = node_statuses(net)
            _say("   " + "\n   ".join(status_lines(statuses)))
            arrived = statuses[topology.national.name]
            done = not isinstance(arrived, str) and arrived.records >= expected
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if not done:
            _say(f"   the national server holds fewer than {expected} records; see {net.state / 'logs'}")
            return 1
        _say(f"   all {expected} records are stored at the national server", pause)

        _say("== 6. The pension service looks a resident up for a listed business")
        agency = topology.agencies[0]
        client = agency_client(net, agency.corporate_number)
        assert first is not None
        provided = client.by_resident_code(PENSION_BUSINESS, first.resident_code)
        _say(f"   {agency.name} / {PENSION_BUSINESS}: provision #{provided.provision_id}: {describe(provided.record)}")
        _say("   (My Number withheld: the legal table row does not list it)", pause)
        insurer = next((a for a in topology.agencies if a.corporate_number == INSURER), None)
        if insurer is not None:  # 機関別符号: its row names residents by its own identifier, never by the numbers
            pseudonymous = agency_client(net, insurer.corporate_number)
            found = pseudonymous.search(INSURER_BUSINESS, first.birth_date, first.sex, name=first.name.kanji)
            identifier = found.candidates[0].agency_identifier  # a pseudonymous row may not ask by 住民票コード
            again = pseudonymous.by_agency_identifier(INSURER_BUSINESS, identifier)
            _say(f"   {insurer.name} / {INSURER_BUSINESS}: found by four items, agency identifier {identifier} "
                 f"(no 住民票コード, no My Number); asked back by it: {describe(again.record)}", pause)  # fmt: skip

        _say("== 6b. ４情報検索: the pension service names a person by reading, birth date and sex")
        if demo_provision.four_item_search(client, PENSION_BUSINESS, first, lambda text: _say(text)) != 0:
            return 1
        time.sleep(pause)

        _say("== 7. The same agency asks for a business it is not listed for")
        try:
            client.by_resident_code(UNLISTED_BUSINESS, first.resident_code)
            _say("   UNEXPECTED: the lookup was answered")
            return 1
        except grpc.RpcError as exc:
            _say(f"   refused: {exc.code().name}: {exc.details()}", pause)

        _say(
            "== 7b. プッシュ型通知: the pension service subscribes to a 中野区 resident (durable cursors, acknowledged)"
        )
        push = push_client(net, agency.corporate_number)
        every, deaths = demo_provision.subscribe(push, PENSION_BUSINESS, born.resident_code, lambda t: _say(t))

        _say("== 8. 中野区 → 横浜市西区 (another prefecture): 転出, then 特例転入 with the My Number card and its PIN")
        old, new = admins[str(nakano.node_ids[0])][1], admins[str(nishi.node_ids[0])][1]
        if demo_moves.move(net, reader, old, new, client, PENSION_BUSINESS, born, _say) != 0:
            return 1
        time.sleep(pause)
        _say("== 8b. The subscriptions receive the move, then a death recorded at 横浜市西区")
        demo_provision.record_death(new, born.resident_code, lambda t: _say(t))
        death = identity_pb2.CHANGE_REASON_DEATH
        if demo_provision.receive(push, every, death, lambda t: _say(t)) != 0:
            return 1
        if demo_provision.receive(push, deaths, death, lambda t: _say(t)) != 0:
            return 1
        time.sleep(pause)
        _say("== 8c. 定期照会: the pension service checks the 500 residents registered in bulk, the one who died,")
        _say("   a code nobody holds and a malformed one, through one batch stream")
        codes = [r.resident_code for r in bulk] + [born.resident_code]
        unknown = generate_resident_code(rng)  # random 10 digits: held by nobody in a store of hundreds
        codes += [unknown, "0000000000x"]
        if demo_provision.batch_query(client, PENSION_BUSINESS, codes, lambda t: _say(t)) != 0:
            return 1
        time.sleep(pause)

        _say("== 9. The national server's provision log (read by its administrator: role answer-disclosure)")
        batched: list[int] = []
        for entry in admins["national"][1].provisions(limit=1000):
            if entry.query_kind == admin_pb2.QUERY_KIND_BATCH:
                batched.append(entry.provision_id)
                continue
            when = entry.provided_at.ToDatetime().strftime("%H:%M:%S")
            _say(f"   #{entry.provision_id} {when} {entry.agency} {entry.business_code} {entry.resident_code}")
        if batched:
            _say(f"   #{batched[0]}..#{batched[-1]}: the batch query's {len(batched)} entries, one per record provided")
        _say("== 10. 住民票の写しの広域交付: a 中野区 resident's copy at 千代田区's counter, with their My Number card")
        home, counter = admins[str(nakano.node_ids[0])][1], admins[str(chiyoda.node_ids[0])][1]
        if wide_area_copy(net, reader, home, counter, lambda text: _say(text)) != 0:
            return 1
        time.sleep(pause)
        _say("== 10b. 開示: a resident lists who received their data, and their copies, with verified proofs")
        if disclosure(net, reader, home, counter, client, PENSION_BUSINESS, lambda text: _say(text)) != 0:
            return 1
        _say("== 11. The audit log of 中野区's CS: every login and action, a Merkle tree with signed heads")
        _show_audit(net, nakano)
        _say("== 12. Stopping every node")
        reader.close()
    _say(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0


def _show_audit(net, spec) -> None:
    """Entries, a freshly signed tree head, and an inclusion proof of the last entry, checked here."""
    terminal = terminal_for(net, spec)
    deadline = time.monotonic() + 5
    while True:
        reply = terminal.tree_head()
        head = check_tree_head(reply.tree_head, x509.load_der_x509_certificate(reply.signer_certificate))
        entries = terminal.audit.GetEntries(audit_pb2.GetEntriesRequest(start=0, end=head.tree_size)).leaf_data
        if len(entries) >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for leaf in entries[-6:]:
        e = audit_pb2.AuditEntry.FromString(leaf)
        action = audit_pb2.AuditAction.Name(e.action).removeprefix("AUDIT_ACTION_").lower()
        outcome = audit_pb2.AuditOutcome.Name(e.outcome).removeprefix("AUDIT_OUTCOME_").lower()
        _say(f"   {e.time.ToDatetime():%H:%M:%S} {e.actor:<26} {action:<18} {outcome:<8} {e.target} {e.detail[:60]}")
    index = head.tree_size - 1
    proof = terminal.audit.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(leaf_index=index, tree_size=head.tree_size)
    )
    verify_inclusion(leaf_hash(entries[index]), index, head.tree_size, list(proof.audit_path), head.root_hash)
    _say(f"   signed tree head: {head.tree_size} entries, root {head.root_hash.hex()[:16]}…, signature verified; "
         f"inclusion proof of entry {index} verified")  # fmt: skip
