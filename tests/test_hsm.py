"""jukinet.hsm against a real SoftHSM token (no mocks).

In-process tests share the session's one TokenWorker (tests/conftest.py); what needs a worker of its
own (closing it, another config, a missing module) runs in a child process, as a process would.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_named_curve_parameters

from jukinet.domain.errors import Problem, Rejected
from jukinet.hsm import (
    SoftHsmConfig,
    TokenError,
    TokenFailure,
    TokenSigner,
    TokenWorker,
    admin_unlock,
    find_softhsm_module,
    init_token,
    key_id_of,
    provision_aes_key,
    provision_signing_key,
)

PIN, SO_PIN = "1234", "5678"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def token(worker: TokenWorker) -> str:
    """A fresh token per test, so tests share no key state."""
    label = f"t-{uuid.uuid4().hex[:12]}"
    init_token(worker, label, PIN, SO_PIN)
    return label


@pytest.fixture
def signer(worker: TokenWorker, token: str) -> Iterator[TokenSigner]:
    provision_signing_key(worker, token, PIN)
    with TokenSigner(worker, token, PIN) as s:
        yield s


def verify(public_key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> None:
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def verify_digest(public_key: ec.EllipticCurvePublicKey, sig: bytes, digest: bytes) -> None:
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def refused(fn: object, *args: object) -> TokenError:
    with pytest.raises(TokenError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def test_init_token_is_idempotent(worker: TokenWorker, softhsm: SoftHsmConfig, token: str) -> None:
    init_token(worker, token, "other-pin", "other-so-pin")  # exists: left as it is, PINs included
    assert softhsm.token_labels().count(token) == 1
    provision_signing_key(worker, token, PIN)
    assert refused(provision_signing_key, worker, token, "other-pin").reason is TokenFailure.PIN_INCORRECT
    assert softhsm.env() == {"SOFTHSM2_CONF": str(softhsm.conf_path)}
    assert SoftHsmConfig.create(softhsm.root) == softhsm


def test_init_token_sets_both_pins_through_pkcs11(worker: TokenWorker, softhsm: SoftHsmConfig) -> None:
    """No softhsm2-util: the token appears for other processes too, with exactly the PINs given."""
    label = f"t-{uuid.uuid4().hex[:12]}"
    init_token(worker, label, "user-pin-1", "so-pin-1")
    assert label in softhsm.token_labels()  # softhsm2-util, another process, sees it
    provision_signing_key(worker, label, "user-pin-1")  # the user PIN logs in
    assert refused(provision_signing_key, worker, label, "so-pin-1").reason is TokenFailure.PIN_INCORRECT
    admin_unlock(worker, label, "so-pin-1")  # the SO PIN logs in as SO
    assert refused(admin_unlock, worker, label, "user-pin-1").reason is TokenFailure.PIN_INCORRECT
    second = f"t-{uuid.uuid4().hex[:12]}"
    init_token(worker, second, "user-pin-2", "so-pin-2")  # SoftHSM offers a new free slot each time
    assert {label, second} <= set(softhsm.token_labels())


@pytest.mark.parametrize(
    ("label", "pin", "so_pin", "says"),
    [
        ("x" * 33, PIN, SO_PIN, "1 to 32 bytes"),
        ("東京都" * 4, PIN, SO_PIN, "1 to 32 bytes"),  # 36 bytes of UTF-8
        (" padded", PIN, SO_PIN, "no surrounding blanks"),
        ("", PIN, SO_PIN, "1 to 32 bytes"),
        ("ok-label", "123", SO_PIN, "user PIN has 4 to 255 characters, got 3"),
        ("ok-label", PIN, "9" * 256, "SO PIN has 4 to 255 characters, got 256"),
    ],
)
def test_init_token_refuses_what_a_token_cannot_take(
    worker: TokenWorker, softhsm: SoftHsmConfig, label: str, pin: str, so_pin: str, says: str
) -> None:
    error = refused(init_token, worker, label, pin, so_pin)
    assert error.reason is TokenFailure.BAD_INPUT and says in str(error)
    assert label.strip() not in softhsm.token_labels()


def test_an_interrupted_generation_leaves_no_second_public_half(worker: TokenWorker, token: str) -> None:
    """A public half stored without its private half (a crash in between) is replaced, not duplicated."""

    def stray_public_half() -> None:
        session = worker.acquire(token, PIN)
        try:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
            )
            params.generate_keypair(store=False, label="signing")[0].copy({Attribute.TOKEN: True})
        finally:
            worker.release(token)

    worker.call(stray_public_half)
    public_key = provision_signing_key(worker, token, PIN)
    with TokenSigner(worker, token, PIN) as s:  # finds exactly one pair, and it matches
        assert s.public_key.public_numbers() == public_key.public_numbers()


def test_the_worker_selects_the_config(worker: TokenWorker, softhsm: SoftHsmConfig) -> None:
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm.conf_path)  # set by the worker, before loading
    assert worker.softhsm_conf == softhsm.conf_path and not worker.closed


def test_the_worker_refuses_a_second_live_instance(
    worker: TokenWorker, softhsm: SoftHsmConfig, token: str, tmp_path: Path
) -> None:
    for conf in (softhsm.conf_path, SoftHsmConfig.create(tmp_path).conf_path):
        error = refused(TokenWorker, find_softhsm_module(), conf)
        assert error.reason is TokenFailure.IN_USE and error.problem is Problem.CONFLICT
        assert "already live in this process" in str(error)
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm.conf_path)  # the refused one changed nothing
    provision_signing_key(worker, token, PIN)  # the live worker is unaffected


_CHILD = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from jukinet.hsm import (
        SoftHsmConfig, TokenError, TokenSigner, TokenWorker, find_softhsm_module, init_token,
        provision_signing_key,
    )

    module = find_softhsm_module()
    first, second = SoftHsmConfig.create(Path(sys.argv[1])), SoftHsmConfig.create(Path(sys.argv[2]))
    out = {}

    def reason(fn, *args):
        try:
            fn(*args)
        except TokenError as exc:
            return [exc.reason.name, exc.problem.name, str(exc)]
        return None

    out["missing_module"] = reason(TokenWorker, Path(sys.argv[1]) / "missing.so", first.conf_path)
    worker = TokenWorker(module, first.conf_path)
    init_token(worker, "child", "1234", "5678")
    provision_signing_key(worker, "child", "1234")
    signer = TokenSigner(worker, "child", "1234")
    worker.close()
    worker.close()  # idempotent
    out["threads_left"] = [t.name for t in threading.enumerate() if t.name == "jukinet-token-worker"]
    out["call"] = reason(worker.call, int)
    out["submit"] = reason(worker.submit, int)
    out["provision"] = reason(provision_signing_key, worker, "child", "1234")
    out["sign"] = reason(signer.sign, b"x")
    signer.close()  # harmless: the worker closed its session
    out["other_config"] = reason(TokenWorker, module, second.conf_path)
    with TokenWorker(module, first.conf_path) as again, TokenSigner(again, "child", "1234") as fresh:
        out["again"] = fresh.key_id == signer.key_id and len(fresh.sign(b"y")) == 64
    print(json.dumps(out))
    """
)


def test_closed_worker_and_another_config_in_a_process_of_their_own(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("SOFTHSM2_CONF", None)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "a"), str(tmp_path / "b")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    reason, problem, message = out["missing_module"]
    assert (reason, problem) == ("MISCONFIGURED", "BROKEN") and "missing.so does not exist" in message
    assert out["threads_left"] == []
    for key in ("call", "submit", "provision", "sign"):
        reason, problem, message = out[key]
        assert (reason, problem) == ("CLOSED", "UNAVAILABLE") and "closed" in message, key
    reason, problem, message = out["other_config"]
    assert (reason, problem) == ("MISCONFIGURED", "BROKEN")
    assert "already loaded in this process with config" in message and str(tmp_path / "b") in message
    assert out["again"] is True  # the same config again: the token logs in afresh


def test_module_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUKINET_PKCS11_MODULE", str(tmp_path / "missing.so"))
    error = refused(find_softhsm_module)
    assert error.reason is TokenFailure.MISCONFIGURED and "missing.so" in str(error)


def test_provisioning_is_idempotent(worker: TokenWorker, token: str) -> None:
    first = provision_signing_key(worker, token, PIN)
    second = provision_signing_key(worker, token, PIN)
    assert isinstance(first.curve, ec.SECP256R1)
    assert first.public_numbers() == second.public_numbers()
    other = provision_signing_key(worker, token, PIN, key_label="other")
    assert other.public_numbers() != first.public_numbers()


def test_signature_verifies_with_provisioned_key(worker: TokenWorker, token: str) -> None:
    public_key = provision_signing_key(worker, token, PIN)
    with TokenSigner(worker, token, PIN) as s:
        assert s.public_key.public_numbers() == public_key.public_numbers()
        assert s.key_id == key_id_of(public_key) and len(s.key_id) == 32
        verify(public_key, s.sign(b"resident record"), b"resident record")
        batch = [b"a", b"b", b"c"]
        for item, sig in zip(batch, s.sign_batch(batch), strict=True):
            verify(public_key, sig, item)
        digests = [bytes([i]) * 32 for i in range(3)]
        for digest, sig in zip(digests, s.sign_digests(digests), strict=True):
            verify_digest(public_key, sig, digest)
        verify_digest(public_key, s.sign_digest(digests[0]), digests[0])
        for bad in (s.sign_digest, s.submit_sign_digest):
            error = refused(bad, b"short")
            assert error.reason is TokenFailure.BAD_INPUT and error.problem is Problem.INVALID


def test_private_key_is_not_extractable(worker: TokenWorker, token: str) -> None:
    provision_signing_key(worker, token, PIN)
    provision_aes_key(worker, token, PIN, "bio")

    def inspect() -> list[tuple[bool, bool, bool]]:
        session = worker.acquire(token, PIN)
        try:
            keys = [
                session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label="signing"),
                session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label="bio"),
            ]
            result = []
            for key in keys:
                try:
                    key[Attribute.VALUE]
                    readable = True
                except p11x.AttributeSensitive:
                    readable = False
                result.append((key[Attribute.EXTRACTABLE], key[Attribute.SENSITIVE], readable))
            return result
        finally:
            worker.release(token)

    assert worker.call(inspect) == [(False, True, False), (False, True, False)]


def test_worker_helpers_run_on_the_worker_thread_only(worker: TokenWorker, token: str) -> None:
    error = refused(worker.acquire, token, PIN)
    assert error.reason is TokenFailure.FAILED and "worker thread only" in str(error)
    # call and submit are re-entrant: on the worker thread they run inline.
    assert worker.call(worker.call, threading.current_thread) is worker.call(threading.current_thread)
    nested = worker.call(worker.submit, threading.current_thread)
    assert nested.done() and nested.result().name == "jukinet-token-worker"


def test_wrong_pin(worker: TokenWorker, token: str) -> None:
    provision_signing_key(worker, token, PIN)
    error = refused(TokenSigner, worker, token, "0000")
    assert str(error) == f"wrong PIN for token '{token}'"
    assert (error.reason, error.problem, error.remaining) == (TokenFailure.PIN_INCORRECT, Problem.UNAUTHENTICATED, None)
    assert refused(provision_signing_key, worker, token, "0000").reason is TokenFailure.PIN_INCORRECT
    with TokenSigner(worker, token, PIN):  # logged in: another PIN is still wrong for the shared login
        assert refused(TokenSigner, worker, token, "0000").reason is TokenFailure.PIN_INCORRECT


def test_missing_token_and_key(worker: TokenWorker, token: str) -> None:
    error = refused(TokenSigner, worker, "no-such-token", PIN)
    assert (error.reason, error.problem) == (TokenFailure.NO_TOKEN, Problem.NOT_FOUND)
    assert str(error).startswith("token 'no-such-token' not found in SoftHSM at ")
    error = refused(TokenSigner, worker, token, PIN)
    assert (error.reason, error.problem) == (TokenFailure.NO_KEY, Problem.NOT_FOUND)
    assert "key 'signing' not found" in str(error)
    provision_signing_key(worker, token, PIN)
    with TokenSigner(worker, token, PIN) as s:
        error = refused(s.encrypt_aes_gcm, "no-such-aes-key", os.urandom(12), b"x")
        assert error.reason is TokenFailure.NO_KEY and "AES key 'no-such-aes-key' not found" in str(error)


def test_concurrent_signing(signer: TokenSigner) -> None:
    results: dict[int, list[tuple[bytes, bytes]]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = [(m, signer.sign(m)) for m in (f"{n}:{i}".encode() for i in range(200))]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(len(r) for r in results.values()) == 1600
    for pairs in results.values():
        for data, sig in pairs:
            verify(signer.public_key, sig, data)


def test_submitted_signatures_from_many_threads(signer: TokenSigner) -> None:
    futures: dict[int, list[tuple[bytes, Future[bytes]]]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:  # all submitted before any is awaited
            digests = [bytes([n, i]) * 16 for i in range(100)]
            futures[n] = [(d, signer.submit_sign_digest(d)) for d in digests]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pairs = [(digest, future.result(timeout=30)) for batch in futures.values() for digest, future in batch]
    assert len(pairs) == 800
    for digest, sig in pairs:
        verify_digest(signer.public_key, sig, digest)

    async def in_asyncio() -> list[bytes]:
        digests = [bytes([i]) * 32 for i in range(10)]
        return await asyncio.gather(*(asyncio.wrap_future(signer.submit_sign_digest(d)) for d in digests))

    for i, sig in enumerate(asyncio.run(in_asyncio())):
        verify_digest(signer.public_key, sig, bytes([i]) * 32)


def test_two_signers_share_one_login(worker: TokenWorker, token: str) -> None:
    provision_signing_key(worker, token, PIN, key_label="a")
    provision_signing_key(worker, token, PIN, key_label="b")
    a = TokenSigner(worker, token, PIN, key_label="a")
    b = TokenSigner(worker, token, PIN, key_label="b")
    a.close()  # must not log b out
    verify(b.public_key, b.sign(b"x"), b"x")
    b.close()


def test_aes_gcm_roundtrip(worker: TokenWorker, token: str, signer: TokenSigner) -> None:
    provision_aes_key(worker, token, PIN, "bio")
    provision_aes_key(worker, token, PIN, "bio")  # idempotent
    nonce = os.urandom(12)
    ct = signer.encrypt_aes_gcm("bio", nonce, b"template", b"resident-1")
    assert len(ct) == len(b"template") + 16
    assert signer.decrypt_aes_gcm("bio", nonce, ct, b"resident-1") == b"template"
    error = refused(signer.decrypt_aes_gcm, "bio", nonce, ct, b"resident-2")
    assert error.reason is TokenFailure.NOT_AUTHENTIC and "AES-GCM decryption with 'bio'" in str(error)


def test_close_is_idempotent(worker: TokenWorker, token: str) -> None:
    provision_signing_key(worker, token, PIN)
    s = TokenSigner(worker, token, PIN)
    s.close()
    s.close()
    for error in (
        refused(s.sign, b"x"),
        refused(s.sign_batch, [b"x"]),
        refused(s.submit_sign_digest, bytes(32)),
        refused(s.encrypt_aes_gcm, "bio", os.urandom(12), b"x"),
    ):
        assert (error.reason, error.problem) == (TokenFailure.CLOSED, Problem.UNAVAILABLE)
        assert str(error) == f"signer for token '{token}' is closed"
    with TokenSigner(worker, token, PIN) as again:  # the token was logged out cleanly
        verify(again.public_key, again.sign(b"y"), b"y")


def test_token_errors_are_rejections_with_their_problem() -> None:
    expected = {
        TokenFailure.PIN_INCORRECT: Problem.UNAUTHENTICATED,
        TokenFailure.PIN_LOCKED: Problem.DENIED,
        TokenFailure.CARD_LOCKED: Problem.DENIED,
        TokenFailure.NO_TOKEN: Problem.NOT_FOUND,
        TokenFailure.NO_KEY: Problem.NOT_FOUND,
        TokenFailure.IN_USE: Problem.CONFLICT,
        TokenFailure.WRONG_KEY: Problem.INVALID,
        TokenFailure.CLOSED: Problem.UNAVAILABLE,
        TokenFailure.FAILED: Problem.UNAVAILABLE,
    }
    for reason, problem in expected.items():
        error = TokenError(reason, "what happened")
        assert isinstance(error, Rejected) and error.problem is problem and error.reason is reason
    error = pickle.loads(
        pickle.dumps(TokenError(TokenFailure.PIN_INCORRECT, "wrong PIN for card 'c'; 2 tries left", 2))
    )
    assert (error.reason, error.problem, error.remaining, str(error)) == (
        TokenFailure.PIN_INCORRECT,
        Problem.UNAUTHENTICATED,
        2,
        "wrong PIN for card 'c'; 2 tries left",
    )
