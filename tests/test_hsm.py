"""jukinet.hsm against a real SoftHSM token (no mocks)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.hsm import (
    HsmError,
    SoftHsmConfig,
    TokenSigner,
    find_softhsm_module,
    key_id_of,
    owner,
    provision_aes_key,
    provision_signing_key,
)

PIN, SO_PIN = "1234", "5678"


@pytest.fixture
def token(softhsm: SoftHsmConfig) -> str:
    """A fresh token per test, so tests share no key state."""
    label = f"t-{uuid.uuid4().hex[:12]}"
    softhsm.init_token(label, PIN, SO_PIN)
    return label


@pytest.fixture
def signer(module: Path, token: str) -> Iterator[TokenSigner]:
    provision_signing_key(module, token, PIN)
    with TokenSigner(module, token, PIN) as s:
        yield s


def verify(public_key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> None:
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def test_init_token_is_idempotent(softhsm: SoftHsmConfig, token: str) -> None:
    softhsm.init_token(token, PIN, SO_PIN)
    assert softhsm.token_labels().count(token) == 1
    assert softhsm.env() == {"SOFTHSM2_CONF": str(softhsm.conf_path)}
    assert SoftHsmConfig.create(softhsm.root) == softhsm


def test_activate_refuses_a_second_config(softhsm: SoftHsmConfig, module: Path, token: str, tmp_path: Path) -> None:
    provision_signing_key(module, token, PIN)  # the library is now loaded in this process
    softhsm.activate()  # same config again: fine
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm.conf_path)
    with pytest.raises(HsmError, match="already loaded"):
        SoftHsmConfig.create(tmp_path).activate()


def test_module_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUKINET_PKCS11_MODULE", str(tmp_path / "missing.so"))
    with pytest.raises(HsmError, match=r"missing\.so"):
        find_softhsm_module()


def test_provisioning_is_idempotent(module: Path, token: str) -> None:
    first = provision_signing_key(module, token, PIN)
    second = provision_signing_key(module, token, PIN)
    assert isinstance(first.curve, ec.SECP256R1)
    assert first.public_numbers() == second.public_numbers()
    other = provision_signing_key(module, token, PIN, key_label="other")
    assert other.public_numbers() != first.public_numbers()


def test_signature_verifies_with_provisioned_key(module: Path, token: str) -> None:
    public_key = provision_signing_key(module, token, PIN)
    with TokenSigner(module, token, PIN) as s:
        assert s.public_key.public_numbers() == public_key.public_numbers()
        assert s.key_id == key_id_of(public_key) and len(s.key_id) == 32
        verify(public_key, s.sign(b"resident record"), b"resident record")
        batch = [b"a", b"b", b"c"]
        for item, sig in zip(batch, s.sign_batch(batch), strict=True):
            verify(public_key, sig, item)
        with pytest.raises(ValueError):
            s.sign_digest(b"short")


def test_private_key_is_not_extractable(module: Path, token: str) -> None:
    provision_signing_key(module, token, PIN)
    provision_aes_key(module, token, PIN, "bio")

    def inspect() -> list[tuple[bool, bool, bool]]:
        session = owner.acquire(str(module), token, PIN)
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
            owner.release(str(module), token)

    assert owner.call(inspect) == [(False, True, False), (False, True, False)]
    owner.stop_if_idle()


def test_wrong_pin(module: Path, token: str) -> None:
    provision_signing_key(module, token, PIN)
    with pytest.raises(HsmError, match=f"wrong PIN for token '{token}'"):
        TokenSigner(module, token, "0000")
    with pytest.raises(HsmError, match="wrong PIN"):
        provision_signing_key(module, token, "0000")


def test_missing_token_and_key(module: Path, token: str) -> None:
    with pytest.raises(HsmError, match="token 'no-such-token' not found"):
        TokenSigner(module, "no-such-token", PIN)
    with pytest.raises(HsmError, match="key 'signing' not found"):
        TokenSigner(module, token, PIN)


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


def test_two_signers_share_one_login(module: Path, token: str) -> None:
    provision_signing_key(module, token, PIN, key_label="a")
    provision_signing_key(module, token, PIN, key_label="b")
    a = TokenSigner(module, token, PIN, key_label="a")
    b = TokenSigner(module, token, PIN, key_label="b")
    a.close()  # must not log b out
    verify(b.public_key, b.sign(b"x"), b"x")
    b.close()


def test_aes_gcm_roundtrip(module: Path, token: str, signer: TokenSigner) -> None:
    provision_aes_key(module, token, PIN, "bio")
    nonce = os.urandom(12)
    ct = signer.encrypt_aes_gcm("bio", nonce, b"template", b"resident-1")
    assert len(ct) == len(b"template") + 16
    assert signer.decrypt_aes_gcm("bio", nonce, ct, b"resident-1") == b"template"
    with pytest.raises(HsmError):
        signer.decrypt_aes_gcm("bio", nonce, ct, b"resident-2")


def test_close_is_idempotent(module: Path, token: str) -> None:
    provision_signing_key(module, token, PIN)
    s = TokenSigner(module, token, PIN)
    s.close()
    s.close()
    with pytest.raises(HsmError, match="closed"):
        s.sign(b"x")
    with TokenSigner(module, token, PIN) as again:  # the token was logged out cleanly
        verify(again.public_key, again.sign(b"y"), b"y")
