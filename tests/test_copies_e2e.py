"""住民票の写しの広域交付 on a running network: a resident of 中野区 (cs:131148, the home CS) presents their My
Number card at the counter of 千代田区 (cs:131016, the requesting CS), which asks the home CS over mutual
TLS and verifies the signed copy before it answers the terminal.

Real parts throughout: node processes, SoftHSM node tokens, the resident's card as its own SoftHSM token
(PIN, authentication key), LMDB, mutual TLS. The home CS's household data (世帯主, 続柄, 本籍, 筆頭者) is
written into its store while it is stopped, as the operators' front end for it is another part's. The
last tests stop the home CS and put an impostor at its address that holds the home CS's TLS key (stolen)
and answers with copies that are each wrong in one way: the requesting CS prints none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from conftest import wait_until
from netutil import bare_terminal, channel_with, residents, rpc_error, run_cli, simulated, terminal

from jukinet.clients.cards import present_card
from jukinet.clients.copies import CopyClient, copy_request, present_for_copy
from jukinet.clients.terminal import TerminalClient
from jukinet.devnet.resident_cards import ResidentCardKit, issue_resident_card, set_up_resident_card
from jukinet.devnet.simulated import SimulatedNode
from jukinet.domain.copies import CARD_PURPOSE, request_digest
from jukinet.pki import seal, seal_payload
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, cards_pb2, copies_pb2, copies_pb2_grpc, envelope_pb2, local_pb2

HOME, COUNTER = "cs:131148", "cs:131016"
PIN = "4321"
HOUSEHOLD = local_pb2.LocalResidentData(
    head_of_household="中野 一郎",
    relationship="妻",
    registered_domicile="東京都中野区中野一丁目1番",
    head_of_family_register="中野 太郎",
)


@dataclass
class Counter:
    """The desk at the requesting CS and the home CS's terminal, with the resident and their card."""

    running: object
    desk: CopyClient  # at the requesting CS (administrator: every role)
    home: CopyClient  # at the home CS
    resident: object  # IdentityRecord
    card: ResidentCardKit

    def request(self, resident_code: str | None = None, home: str = HOME, **asked) -> bytes:
        code = self.resident.resident_code if resident_code is None else resident_code
        return copy_request(COUNTER, home, code, **asked)

    def present(self, request: bytes, kit: ResidentCardKit | None = None) -> cards_pb2.CardPresentation:
        with (kit or self.card).card(self.running.worker).unlock(PIN) as card:
            return present_for_copy(card, request)


def _write_household(running, code: str) -> None:
    spec = running.network.topology.node(HOME)
    running.stop_node(spec)
    storage = NodeStorage.open(running.network.node_dir(spec) / "data")
    try:
        storage.env.write(lambda txn: storage.local.put(txn, code, HOUSEHOLD))
    finally:
        storage.close()
    running.start_node(spec)


def _issue_card(running, holder) -> ResidentCardKit:
    """The resident's card set up and handed over at the home CS (交付前設定, 交付), as a clerk does."""
    return set_up_resident_card(running.worker, running.network, terminal(running, HOME), holder, PIN)


@pytest.fixture(scope="module")
def counter(private_network) -> Counter:
    running = private_network
    [resident] = residents("131148", 1)
    terminal(running, HOME).record_change(resident)
    _write_household(running, resident.resident_code)
    kit = _issue_card(running, resident)
    return Counter(running, CopyClient(terminal(running, COUNTER)), CopyClient(terminal(running, HOME)), resident, kit)


def _issued(counter: Counter) -> list[copies_pb2.CopyIssuance]:
    return list(counter.home.issuances(counter.resident.resident_code, limit=1000))


def _audited(
    client: TerminalClient, action: int, check: Callable[[audit_pb2.AuditEntry], bool]
) -> audit_pb2.AuditEntry:
    """The last entry of ``action`` that passes ``check``, once a signed tree head covers it."""

    def find() -> audit_pb2.AuditEntry | None:
        size = audit_pb2.TreeHead.FromString(client.tree_head().tree_head.payload).tree_size
        found = [e for e in map(audit_pb2.AuditEntry.FromString, client.audit_entries(0, size)) if e.action == action]
        return next((e for e in reversed(found) if check(e)), None)

    return wait_until(find, timeout=10, what=f"an audit entry of action {action}")


def _refused(counter: Counter, request: bytes, card, code: grpc.StatusCode) -> str:
    """The requesting CS refuses (nothing is issued at the home CS); returns the message."""
    before = len(_issued(counter))
    exc = rpc_error(counter.desk.request_copy, request, card)
    assert exc.code() == code, (exc.code(), exc.details())
    assert len(_issued(counter)) == before
    return exc.details() or ""


# -- a copy issued and verified ---------------------------------------------------------------------------


def test_a_copy_is_issued_by_the_home_cs_and_verified_at_the_counter(counter):
    request = counter.request()
    answer = counter.desk.request_copy(request, counter.present(request))
    copy = answer.certified_copy
    r = counter.resident
    assert (copy.issuer, copy.requesting_cs, copy.request_sha256) == (HOME, COUNTER, request_digest(request))
    assert (copy.name, copy.birth_date, copy.sex, copy.address) == (r.name, r.birth_date, r.sex, r.address)
    assert (copy.head_of_household, copy.relationship) == ("中野 一郎", "妻")
    assert not copy.resident_code and not copy.my_number  # not expressly requested
    for never in (HOUSEHOLD.registered_domicile, HOUSEHOLD.head_of_family_register):  # 本籍, 筆頭者
        assert never.encode() not in answer.copy.SerializeToString()
    assert answer.copy.payload_type == "jukinet.v1.CertifiedCopy" and answer.copy.certificate
    assert copies_pb2.CertifiedCopy.FromString(answer.copy.payload) == copy
    [logged] = [i for i in _issued(counter) if i.serial == copy.serial]
    assert (logged.requesting_cs, logged.resident_code_included, logged.my_number_included) == (COUNTER, False, False)
    entry = _audited(terminal(counter.running, HOME), audit_pb2.AUDIT_ACTION_COPY_ISSUE,
                     lambda e: f"#{copy.serial} " in e.detail)  # fmt: skip
    assert entry.outcome == audit_pb2.AUDIT_OUTCOME_SUCCESS and entry.actor == COUNTER
    _audited(terminal(counter.running, COUNTER), audit_pb2.AUDIT_ACTION_COPY_REQUEST,
             lambda e: f"{HOME}#{copy.serial} verified" in e.detail)  # fmt: skip


def test_express_requests_include_the_code_and_the_number(counter):
    request = counter.request("", include_resident_code=True, include_my_number=True)  # the card names them
    copy = counter.desk.request_copy(request, counter.present(request)).certified_copy
    assert (copy.resident_code, copy.my_number) == (counter.resident.resident_code, counter.resident.my_number)
    [logged] = [i for i in _issued(counter) if i.serial == copy.serial]
    assert logged.resident_code_included and logged.my_number_included
    only_code = counter.request(include_resident_code=True)
    copy = counter.desk.request_copy(only_code, counter.present(only_code)).certified_copy
    assert copy.resident_code and not copy.my_number


# -- refusals ---------------------------------------------------------------------------------------------


def test_without_or_with_a_bad_card_presentation_no_copy(counter, tmp_path):
    request = counter.request()
    assert "no card certificate" in _refused(counter, request, None, grpc.StatusCode.UNAUTHENTICATED)
    other = counter.request()
    message = _refused(counter, request, counter.present(other), grpc.StatusCode.UNAUTHENTICATED)
    assert "does not verify" in message  # presented for another request
    with counter.card.card(counter.running.worker).unlock(PIN) as card:
        for_a_move = present_card(card, "special-move-in", HOME, request)
        at_the_counter = present_card(card, CARD_PURPOSE, COUNTER, request)
    for wrong in (for_a_move, at_the_counter):  # another purpose; presented to the requesting CS
        _refused(counter, request, wrong, grpc.StatusCode.UNAUTHENTICATED)
    presented = counter.present(request)
    counter.desk.request_copy(request, presented)
    _refused(counter, request, presented, grpc.StatusCode.UNAUTHENTICATED)  # the same presentation again
    stranger = issue_resident_card(
        counter.running.worker, counter.running.network, None, PIN, residents("131148", 1)[0]
    )
    fresh = counter.request()
    assert "not a card of a resident" in _refused(counter, fresh, counter.present(fresh, stranger),
                                                  grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip


def test_someone_elses_card_gets_no_copy(counter):
    [other] = residents("131148", 1)
    terminal(counter.running, HOME).record_change(other)
    kit = _issue_card(counter.running, other)
    request = counter.request()  # names our resident; the card is the other's
    message = _refused(counter, request, counter.present(request, kit), grpc.StatusCode.PERMISSION_DENIED)
    assert counter.resident.name.kanji not in message


def test_a_dv_protected_copy_is_refused_saying_nothing_of_the_person(counter):
    code = counter.resident.resident_code
    measure = counter.home.register_dv_measure(code, ["131016"])  # requests made at 千代田区's counter
    try:
        assert [m.measure_id for m in counter.home.dv_measures(code)] == [measure.measure_id]
        request = counter.request()
        message = _refused(counter, request, counter.present(request), grpc.StatusCode.PERMISSION_DENIED)
        assert "広域交付" in message
        r = counter.resident
        for secret in (code, r.name.kanji, r.address.text, "DV", "131016", f"#{measure.measure_id}"):
            assert secret not in message
        entry = _audited(terminal(counter.running, HOME), audit_pb2.AUDIT_ACTION_COPY_ISSUE,
                         lambda e: e.target == code and e.outcome == audit_pb2.AUDIT_OUTCOME_DENIED)  # fmt: skip
        assert f"DV support measure #{measure.measure_id}" in entry.detail
    finally:
        counter.home.remove_dv_measure(code, measure.measure_id)
    assert not counter.home.dv_measures(code)
    request = counter.request()
    assert counter.desk.request_copy(request, counter.present(request)).certified_copy.serial  # lifted


def test_dv_measures_need_their_role_and_good_input(counter):
    code = counter.resident.resident_code
    for call in (lambda t: CopyClient(t).dv_measures(code), lambda t: CopyClient(t).register_dv_measure(code)):
        assert rpc_error(call, bare_terminal(counter.running, HOME)).code() == grpc.StatusCode.UNAUTHENTICATED
    bad = [
        lambda: counter.home.register_dv_measure("12345678901"),
        lambda: counter.home.register_dv_measure(code, ["999999"]),
        lambda: counter.home.register_dv_measure(code, ["131016"] * 65),
        lambda: counter.home.remove_dv_measure(code, 10**6),
    ]
    for call in bad:
        assert rpc_error(call).code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    other_municipality = residents("131016", 1)[0]
    terminal(counter.running, COUNTER).record_change(other_municipality)
    exc = rpc_error(counter.home.register_dv_measure, other_municipality.resident_code)
    assert exc.code() == grpc.StatusCode.NOT_FOUND  # not a resident of this CS
    assert not counter.home.dv_measures(code)


def test_a_caller_that_is_not_another_cs_is_refused(counter, tmp_path):
    running = counter.running
    net = running.network
    request = copies_pb2.IssueCopyRequest(request=counter.request())
    callers = {
        "pref:13": (net.node_dir(net.topology.node("pref:13")) / "tls.pem",),
        HOME: (net.node_dir(net.topology.node(HOME)) / "tls.pem",),  # the home CS itself
        "terminal": (net.terminal("131148").cert,),
    }
    for who, (cert,) in callers.items():
        key = cert.with_suffix(".key")
        with channel_with(running, HOME, cert, key) as channel:
            exc = rpc_error(copies_pb2_grpc.CopyExchangeServiceStub(channel).IssueCopy, request, timeout=10)
        assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, (who, exc.details())
    another = simulated(running, ["cs:131041"], tmp_path / "cs-131041")  # a CS, but not the one the request names
    with another.channel(running.network.topology.node(HOME).listen, HOME) as channel:
        exc = rpc_error(copies_pb2_grpc.CopyExchangeServiceStub(channel).IssueCopy, request, timeout=10)
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED and "cs:131041 sent it" in exc.details()


def test_the_issuances_show_when_and_where(counter):
    issued = _issued(counter)
    assert issued and all(i.requesting_cs == COUNTER and i.issued_at.seconds for i in issued)
    assert [i.serial for i in issued] == sorted(i.serial for i in issued)
    assert rpc_error(CopyClient(bare_terminal(counter.running, HOME)).issuances,
                     counter.resident.resident_code).code() == grpc.StatusCode.UNAUTHENTICATED  # fmt: skip


def test_the_counter_and_the_home_cs_from_the_command_line(counter):
    """`jukinet copies …` with the sessions `operator login` leaves at the site terminals (written here from
    the administrators' sessions), the resident's PIN on a descriptor."""
    running = counter.running
    net = running.network
    for node in (HOME, COUNTER):
        session = net.terminal(net.topology.node(node).site).cert.parent / "session.bin"
        session.write_bytes(terminal(running, node).session.SerializeToString())
    state = str(net.state)
    code = counter.resident.resident_code
    done = run_cli("copies", "request", "--state", state, "--node", COUNTER, "--home", HOME,
                   "--card", counter.card.card_serial, "--with-my-number", fds={"--pin-fd": PIN})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert counter.resident.name.kanji in done.stdout and f"個人番号 {counter.resident.my_number}" in done.stdout
    assert "世帯主 中野 一郎" in done.stdout and HOUSEHOLD.registered_domicile not in done.stdout
    assert "住民票コード" not in done.stdout and "signature verified" in done.stdout
    listed = run_cli("copies", "issuances", "--state", state, "--node", HOME, code)
    assert listed.returncode == 0 and f"to {COUNTER}  with 個人番号" in listed.stdout, listed.stderr
    added = run_cli("copies", "dv-register", "--state", state, "--node", HOME, code, "--municipality", "131016")
    assert added.returncode == 0 and "refuses 広域交付 requests made at 131016" in added.stdout, added.stderr
    measure = counter.home.dv_measures(code)[0].measure_id
    refused = run_cli("copies", "request", "--state", state, "--node", COUNTER, "--home", HOME,
                      "--card", counter.card.card_serial, fds={"--pin-fd": PIN})  # fmt: skip
    assert (refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr) or "広域交付" in refused.stderr
    removed = run_cli("copies", "dv-remove", "--state", state, "--node", HOME, code, "--measure", str(measure))
    assert removed.returncode == 0 and not counter.home.dv_measures(code), removed.stderr


# -- a copy that does not verify is not printed ------------------------------------------------------------


class FakeHome(copies_pb2_grpc.CopyExchangeServiceServicer):
    """Listens at the home CS's address with its TLS key (stolen); answers with what ``answer`` makes."""

    def __init__(self, address: str, cert: Path, key: Path, bundle: Path) -> None:
        self.answer: Callable[[copies_pb2.CopyRequest, bytes], envelope_pb2.Signed] | None = None
        self.calls = 0
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        copies_pb2_grpc.add_CopyExchangeServiceServicer_to_server(self, self.server)
        creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())], bundle.read_bytes(), True)
        assert self.server.add_secure_port(address, creds)
        self.server.start()

    def IssueCopy(self, request, context):
        with self._lock:
            self.calls += 1
        assert self.answer is not None
        return copies_pb2.IssueCopyResponse(copy=self.answer(copies_pb2.CopyRequest.FromString(request.request),
                                                             request.request))  # fmt: skip

    def stop(self) -> None:
        self.server.stop(None).wait()


@pytest.fixture(scope="module")
def fake_home(counter):
    running = counter.running
    net = running.network
    spec = net.topology.node(HOME)
    running.stop_node(spec)
    node = net.node_dir(spec)
    fake = FakeHome(spec.listen, node / "tls.pem", node / "tls.key", net.pki_dir / "trust-bundle.pem")
    yield fake
    fake.stop()
    running.start_node(spec)


def _genuine(counter: Counter) -> Callable[[copies_pb2.CopyRequest, bytes], copies_pb2.CertifiedCopy]:
    def make(request: copies_pb2.CopyRequest, raw: bytes) -> copies_pb2.CertifiedCopy:
        r = counter.resident
        copy = copies_pb2.CertifiedCopy(
            serial=9999, issuer=HOME, requesting_cs=COUNTER, request_sha256=request_digest(raw), name=r.name,
            birth_date=r.birth_date, sex=r.sex, address=r.address, change_reason=r.change_reason,
            change_date=r.change_date,
        )  # fmt: skip
        copy.issued_at.GetCurrentTime()
        return copy

    return make


def test_a_copy_that_does_not_verify_is_refused_and_not_printed(counter, fake_home, tmp_path):
    running = counter.running
    token = simulated(running, [HOME], tmp_path / "home-key")  # a key certified for the home CS (control)
    stolen_tls_only = simulated(running, ["cs:131041"], tmp_path / "other-key")  # not the home CS's key
    make = _genuine(counter)

    def signed_by(node: SimulatedNode, change=lambda c: None):
        def answer(request, raw):
            copy = make(request, raw)
            change(copy)
            return seal(node.signer, copy, node.certificate_der)

        return answer

    def flipped(request, raw):
        envelope = seal(token.signer, make(request, raw), token.certificate_der)
        payload = bytearray(envelope.payload)
        payload[len(payload) // 2] ^= 1
        envelope.payload = bytes(payload)
        return envelope

    fake_home.answer = signed_by(token)  # the harness is right: a copy signed by a home-CS key passes
    request = counter.request()
    assert counter.desk.request_copy(request, cards_pb2.CardPresentation()).certified_copy.serial == 9999
    forgeries = {
        "tampered bytes": flipped,
        "signed by another node's key": signed_by(stolen_tls_only),
        "no signer certificate": lambda q, raw: seal(token.signer, make(q, raw)),
        "another type": lambda q, raw: seal_payload(token.signer, "jukinet.v1.CopyIssuance",
                                                    make(q, raw).SerializeToString(), token.certificate_der),
        "an answer to another request": signed_by(token, lambda c: setattr(c, "request_sha256", b"\x01" * 32)),
        "a record of another municipality": signed_by(token, lambda c: setattr(c.address, "municipality_code",
                                                                               "131016")),
        "the My Number, not requested": signed_by(token, lambda c: setattr(c, "my_number",
                                                                           counter.resident.my_number)),
    }  # fmt: skip
    for why, answer in forgeries.items():
        fake_home.answer = answer
        request = counter.request()
        exc = rpc_error(counter.desk.request_copy, request, cards_pb2.CardPresentation())
        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, (why, exc.details())
        assert "does not verify" in exc.details() and "not printed" in exc.details(), why
    assert fake_home.calls == 1 + len(forgeries)
    assert terminal(running, COUNTER).status().node_ids == [COUNTER]  # still serving
