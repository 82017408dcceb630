"""The operator's IC card (jukinet.hsm.card) against real SoftHSM tokens (no mocks).

Uses the process's one SoftHSM configuration and TokenWorker: the session fixtures ``softhsm`` and
``worker`` of tests/conftest.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.domain.errors import Problem
from jukinet.hsm import (
    MAX_PIN_FAILURES,
    OperatorCard,
    SoftHsmConfig,
    TokenError,
    TokenFailure,
    TokenSigner,
    TokenWorker,
    admin_unlock,
    create_card,
    generate_card_key,
    init_token,
    key_id_of,
    provision_signing_key,
    store_card_certificate,
)
from jukinet.hsm.card import FAILURES_LABEL
from jukinet.pki import init_pki, issue_signing_certificate, verify_ecdsa_raw

PIN, SO_PIN, BAD = "1234", "5678", "0000"
OPERATOR = "operator:131148:clerk-01"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pki_dir = tmp_path_factory.mktemp("card-pki") / "pki"
    init_pki(pki_dir)
    return pki_dir


def new_label(prefix: str = "card") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def enrol(softhsm: SoftHsmConfig, worker: TokenWorker, pki: Path, label: str) -> x509.Certificate:
    """Administrator side: card, key in the card, certificate on the card."""
    create_card(worker, label, PIN, SO_PIN)
    public_key = generate_card_key(worker, label, PIN)
    certificate = issue_signing_certificate(pki, "operator", [OPERATOR], public_key)
    store_card_certificate(worker, label, PIN, certificate)
    return certificate


@pytest.fixture
def card(softhsm: SoftHsmConfig, worker: TokenWorker, pki: Path) -> tuple[OperatorCard, x509.Certificate]:
    label = new_label()
    certificate = enrol(softhsm, worker, pki, label)
    return OperatorCard(worker, label), certificate


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def on_token(worker: TokenWorker, label: str, fn: Callable[..., object]) -> object:
    """fn(session) on the worker thread, logged in with the right PIN (test inspection only)."""

    def run() -> object:
        session = worker.acquire(label, PIN)
        try:
            return fn(session)
        finally:
            worker.release(label)

    return worker.call(run)


def refused(reason: TokenFailure, fn: Callable[..., object], *args: Any, **kwargs: Any) -> TokenError:
    with pytest.raises(TokenError) as info:
        fn(*args, **kwargs)
    assert info.value.reason is reason, info.value
    assert info.value.problem is reason.problem
    return info.value


def wrong_pins(card: OperatorCard, n: int) -> list[int | None]:
    return [refused(TokenFailure.PIN_INCORRECT, card.unlock, BAD).remaining for _ in range(n)]


def test_enrol_unlock_and_sign(softhsm: SoftHsmConfig, worker: TokenWorker, pki: Path) -> None:
    label = new_label()
    certificate = enrol(softhsm, worker, pki, label)
    create_card(worker, label, PIN, SO_PIN)  # idempotent
    assert softhsm.token_labels().count(label) == 1
    public_key = generate_card_key(worker, label, PIN)  # idempotent: the same key
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert public_key.public_numbers() == certificate.public_key().public_numbers()

    card = OperatorCard(worker, label)
    status = card.status()
    assert (status.label, status.failures, status.locked, status.remaining_tries) == (label, 0, False, 5)
    with card.unlock(PIN) as unlocked:
        assert unlocked.certificate_der == der(certificate)
        assert unlocked.certificate == certificate
        assert unlocked.public_key.public_numbers() == public_key.public_numbers()
        assert unlocked.key_id == key_id_of(public_key)
        sig = unlocked.sign(b"login challenge")
        assert len(sig) == 64
        verify_ecdsa_raw(certificate.public_key(), b"login challenge", sig)  # type: ignore[arg-type]
    unlocked.close()  # idempotent
    assert str(refused(TokenFailure.CLOSED, unlocked.sign, b"x")) == f"card '{label}' is closed"


def test_certificate_is_replaced(card: tuple[OperatorCard, x509.Certificate], worker: TokenWorker, pki: Path) -> None:
    operator_card, first = card
    with operator_card.unlock(PIN) as unlocked:
        public_key = unlocked.public_key
    renewed = issue_signing_certificate(pki, "operator", [OPERATOR], public_key, days=30)
    assert renewed.serial_number != first.serial_number
    store_card_certificate(worker, operator_card.label, PIN, renewed)
    with operator_card.unlock(PIN) as unlocked:
        assert unlocked.certificate_der == der(renewed)

    def certificates(session: object) -> list[tuple[object, bytes, bytes, bytes]]:
        objs = session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})  # type: ignore[attr-defined]
        return [
            (o[Attribute.CERTIFICATE_TYPE], o[Attribute.LABEL], o[Attribute.SUBJECT], o[Attribute.ID]) for o in objs
        ]

    assert on_token(worker, operator_card.label, certificates) == [
        (CertificateType.X_509, "card-auth", renewed.subject.public_bytes(), key_id_of(public_key))
    ]
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    foreign = issue_signing_certificate(pki, "operator", [OPERATOR], other)
    error = refused(TokenFailure.WRONG_KEY, store_card_certificate, worker, operator_card.label, PIN, foreign)
    assert "not for the key" in str(error)


def test_wrong_pins_lock_the_card(card: tuple[OperatorCard, x509.Certificate], worker: TokenWorker) -> None:
    operator_card, certificate = card
    label = operator_card.label
    assert wrong_pins(operator_card, 4) == [4, 3, 2, 1]
    status = operator_card.status()
    assert (status.failures, status.locked, status.remaining_tries) == (4, False, 1)

    locked_message = f"card '{label}' is locked after 5 consecutive wrong PINs; an administrator must unlock it"
    error = refused(TokenFailure.CARD_LOCKED, operator_card.unlock, BAD)  # the 5th
    assert (str(error), error.problem, error.remaining) == (locked_message, Problem.DENIED, 0)
    assert str(refused(TokenFailure.CARD_LOCKED, operator_card.unlock, PIN)) == locked_message  # PIN not tried
    refused(TokenFailure.CARD_LOCKED, generate_card_key, worker, label, PIN)  # provisioning honours the counter
    status = operator_card.status()
    assert (status.failures, status.locked, status.remaining_tries) == (MAX_PIN_FAILURES, True, 0)

    error = refused(TokenFailure.PIN_INCORRECT, admin_unlock, worker, label, "9999")
    assert str(error) == f"wrong SO PIN for card '{label}'"
    assert operator_card.status().locked

    admin_unlock(worker, label, SO_PIN)
    assert operator_card.status().failures == 0
    with operator_card.unlock(PIN) as unlocked:
        verify_ecdsa_raw(certificate.public_key(), b"x", unlocked.sign(b"x"))  # type: ignore[arg-type]


def test_wrong_pin_message(card: tuple[OperatorCard, x509.Certificate]) -> None:
    operator_card, _ = card
    error = refused(TokenFailure.PIN_INCORRECT, operator_card.unlock, BAD)
    assert str(error) == f"wrong PIN for card '{operator_card.label}'; 4 tries left"
    assert (error.problem, error.remaining) == (Problem.UNAUTHENTICATED, 4)


def test_success_resets_the_count(card: tuple[OperatorCard, x509.Certificate]) -> None:
    operator_card, _ = card
    assert wrong_pins(operator_card, 4) == [4, 3, 2, 1]
    operator_card.unlock(PIN).close()
    assert operator_card.status().failures == 0
    assert wrong_pins(operator_card, 4) == [4, 3, 2, 1]  # still not locked
    assert not operator_card.status().locked


def test_wrong_pin_counts_while_the_card_is_unlocked(card: tuple[OperatorCard, x509.Certificate]) -> None:
    operator_card, certificate = card
    with operator_card.unlock(PIN) as first:
        with operator_card.unlock(PIN) as second:  # shares the card's login
            assert second.certificate_der == first.certificate_der
        assert wrong_pins(operator_card, 1) == [4]
        verify_ecdsa_raw(certificate.public_key(), b"y", first.sign(b"y"))  # type: ignore[arg-type]
    assert operator_card.status().failures == 1


def test_admin_unlock_sets_a_new_pin(card: tuple[OperatorCard, x509.Certificate], worker: TokenWorker) -> None:
    operator_card, _ = card
    wrong_pins(operator_card, 2)
    with operator_card.unlock(PIN):
        error = refused(TokenFailure.IN_USE, admin_unlock, worker, operator_card.label, SO_PIN, new_pin="4321")
        assert "in use" in str(error)
    admin_unlock(worker, operator_card.label, SO_PIN, new_pin="4321")
    assert operator_card.status().failures == 0
    assert wrong_pins(operator_card, 1) == [4]  # the old PIN
    operator_card.unlock("4321").close()
    assert operator_card.status().failures == 0


def test_card_key_is_not_extractable(card: tuple[OperatorCard, x509.Certificate], worker: TokenWorker) -> None:
    operator_card, _ = card

    def inspect(session: object) -> tuple[bool, bool, bool, bool, bool]:
        key = session.get_key(  # type: ignore[attr-defined]
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label="card-auth"
        )
        try:
            key[Attribute.VALUE]
            readable = True
        except p11x.AttributeSensitive:
            readable = False
        (counter,) = session.get_objects(  # type: ignore[attr-defined]
            {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: FAILURES_LABEL}
        )
        return (
            key[Attribute.EXTRACTABLE],
            key[Attribute.SENSITIVE],
            key[Attribute.SIGN],
            readable,
            counter[Attribute.PRIVATE],
        )

    wrong_pins(operator_card, 1)  # creates the public counter object
    assert on_token(worker, operator_card.label, inspect) == (False, True, True, False, False)


def test_missing_card_key_and_certificate(softhsm: SoftHsmConfig, worker: TokenWorker) -> None:
    error = refused(TokenFailure.NO_TOKEN, OperatorCard(worker, "no-such-card").unlock, PIN)
    assert str(error).startswith("card 'no-such-card': token 'no-such-card' not found")
    refused(TokenFailure.NO_TOKEN, OperatorCard(worker, "no-such-card").status)
    label = new_label()
    create_card(worker, label, PIN, SO_PIN)
    assert "has no key" in str(refused(TokenFailure.NO_KEY, OperatorCard(worker, label).unlock, PIN))
    generate_card_key(worker, label, PIN)
    assert "no certificate" in str(refused(TokenFailure.NO_CERTIFICATE, OperatorCard(worker, label).unlock, PIN))


def test_card_next_to_a_token_signer(softhsm: SoftHsmConfig, worker: TokenWorker, pki: Path) -> None:
    """A terminal process: its own TokenSigner keeps signing while operator cards come and go."""
    token = new_label("terminal")
    init_token(worker, token, PIN, SO_PIN)
    provision_signing_key(worker, token, PIN)
    errors: list[BaseException] = []
    signed: list[tuple[bytes, bytes]] = []
    stop = threading.Event()

    with TokenSigner(worker, token, PIN) as signer:

        def work() -> None:
            n = 0
            try:
                while not stop.is_set():
                    data = f"record {n}".encode()
                    signed.append((data, signer.sign(data)))
                    n += 1
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(3)]
        for w in workers:
            w.start()
        try:
            label = new_label()
            generation = worker.generation
            certificate = enrol(softhsm, worker, pki, label)  # a new token: the library is re-initialised
            assert worker.generation > generation
            operator_card = OperatorCard(worker, label)
            assert wrong_pins(operator_card, 2) == [4, 3]
            for _ in range(3):
                with operator_card.unlock(PIN) as unlocked:
                    verify_ecdsa_raw(certificate.public_key(), b"op", unlocked.sign(b"op"))  # type: ignore[arg-type]
            admin_unlock(worker, label, SO_PIN)
        finally:
            stop.set()
            for w in workers:
                w.join()
        assert not errors
        assert len(signed) > 0
        for data, sig in signed[:: max(1, len(signed) // 200)]:
            verify_ecdsa_raw(signer.public_key, data, sig)
        verify_ecdsa_raw(signer.public_key, b"after", signer.sign(b"after"))


def test_unreadable_counter_fails_closed(card: tuple[OperatorCard, x509.Certificate], worker: TokenWorker) -> None:
    operator_card, certificate = card

    def plant_garbage() -> None:
        session = worker.public_session(operator_card.label)
        try:
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.LABEL: FAILURES_LABEL,
                    Attribute.VALUE: b"not a number",
                }
            )
        finally:
            session.close()

    worker.call(plant_garbage)
    status = operator_card.status()
    assert (status.failures, status.locked, status.remaining_tries) == (MAX_PIN_FAILURES, True, 0)
    refused(TokenFailure.CARD_LOCKED, operator_card.unlock, PIN)
    admin_unlock(worker, operator_card.label, SO_PIN)  # replaces every counter object
    with operator_card.unlock(PIN) as unlocked:
        verify_ecdsa_raw(certificate.public_key(), b"z", unlocked.sign(b"z"))  # type: ignore[arg-type]
