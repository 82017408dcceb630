"""Least privilege of the keys in the tokens of a provisioned network: read back from SoftHSM and attacked.

A signing key (each node's "signing" key, each operator card's "card-auth" key) can only sign; a node's
template key can only encrypt and decrypt. Each is read from the real token, then used for what it
must not do, at the token itself: python-pkcs11 leaves out the methods a key's attributes do not allow,
so the key is re-wrapped in a class that has them all (``any_use``) and the token decides. A permissive
session key of the same type does the same operation first, so a refusal is the attribute's doing and
not a mechanism SoftHSM lacks.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import _pkcs11 as token_ops
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_named_curve_parameters

from jukinet.devnet.supervisor import RunningNetwork
from jukinet.hsm import TokenSigner, TokenWorker
from jukinet.hsm.card import CARD_KEY_LABEL
from jukinet.server.login import TEMPLATE_KEY_LABEL

KEY_FUNCTION_NOT_PERMITTED = "0x68"  # CKR_KEY_FUNCTION_NOT_PERMITTED (python-pkcs11 does not name it)
UNCHANGEABLE = ("AttributeReadOnly", "0x1b")  # CKR_ATTRIBUTE_READ_ONLY, CKR_ACTION_PROHIBITED (unmodifiable object)

SIGNING_PRIVATE = {
    Attribute.SIGN: True,
    Attribute.DERIVE: False,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN_RECOVER: False,
    Attribute.SENSITIVE: True,
    Attribute.ALWAYS_SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.NEVER_EXTRACTABLE: True,
    Attribute.LOCAL: True,  # generated in the token
    Attribute.PRIVATE: True,
    Attribute.MODIFIABLE: False,
}
SIGNING_PUBLIC = {
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
    Attribute.DERIVE: False,
    Attribute.VERIFY_RECOVER: False,
}
TEMPLATE_SECRET = {
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
    Attribute.SENSITIVE: True,
    Attribute.ALWAYS_SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.NEVER_EXTRACTABLE: True,
    Attribute.LOCAL: True,
    Attribute.PRIVATE: True,
    Attribute.MODIFIABLE: False,
    Attribute.COPYABLE: False,
}


def tokens(running: RunningNetwork) -> dict[str, tuple[str, str, str]]:
    """What to inspect: token label -> (PIN, EC key label, role) for every node token and every card."""
    net = running.network
    out = {}
    for spec in net.topology.nodes:
        pin = (net.node_dir(spec) / "token.pin").read_text().strip()
        out[net.token_label(spec)] = (pin, "signing", f"node {spec.name}")
    for kit, _ in running.operators.values():  # type: ignore[attr-defined]
        out[kit.card_label] = (kit.pin, CARD_KEY_LABEL, f"card of {kit.operator_id}")
    return out


def on_token(worker: TokenWorker, label: str, pin: str, fn: Callable[[Any], Any]) -> Any:
    def run() -> Any:
        session = worker.acquire(label, pin)
        try:
            return fn(session)
        finally:
            worker.release(label)

    return worker.call(run)


def attributes(key: Any, wanted: dict[Attribute, bool]) -> dict[Attribute, bool]:
    return {attribute: key[attribute] for attribute in wanted}


def any_use(key: Any, base: type) -> Any:
    """The same token object with every python-pkcs11 operation, so that only the token can refuse one."""
    mixins = (token_ops.SignMixin, token_ops.DecryptMixin, token_ops.WrapMixin, token_ops.UnwrapMixin)
    return type("AnyUse", (base, *mixins, token_ops.DeriveMixin, token_ops.Object), {})(key.wrapper)


def refused_by_token(operation: Callable[[], Any]) -> str:
    with pytest.raises(p11x.PKCS11Error) as info:
        operation()
    return f"{type(info.value).__name__} {info.value}"


def unchangeable(operation: Callable[[], Any]) -> bool:
    refusal = refused_by_token(operation)
    return any(code in refusal for code in UNCHANGEABLE)


def test_signing_keys_can_only_sign(network: RunningNetwork, worker: TokenWorker) -> None:
    inspected = tokens(network)
    assert len(inspected) == 2 * len(network.network.topology.nodes)  # every node token and every card

    for label, (pin, key_label, role) in inspected.items():

        def inspect(session: Any, key_label: str = key_label, role: str = role) -> None:
            priv = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=key_label)
            pub = session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=key_label)
            assert attributes(priv, SIGNING_PRIVATE) == SIGNING_PRIVATE, role
            assert attributes(pub, SIGNING_PUBLIC) == SIGNING_PUBLIC, role
            assert bytes(priv[Attribute.ID]) == bytes(pub[Attribute.ID]) and len(bytes(priv[Attribute.ID])) == 32
            assert "AttributeSensitive" in refused_by_token(lambda: priv[Attribute.VALUE])
            peer = bytes(pub[Attribute.EC_POINT])
            ecdh = {"mechanism": Mechanism.ECDH1_DERIVE, "mechanism_param": (KDF.NULL, None, peer)}

            # Control: a session key with DERIVE does ECDH here, so SoftHSM has the mechanism.
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
            )
            loose_pub, loose_priv = params.generate_keypair(store=False, private_template={Attribute.DERIVE: True})
            try:
                any_use(loose_priv, token_ops.PrivateKey).derive_key(KeyType.AES, 128, **ecdh).destroy()
            finally:
                loose_pub.destroy()
                loose_priv.destroy()

            # The signing key refuses it at the token, cannot be granted it, and cannot be copied into a key with it.
            attacked = any_use(priv, token_ops.PrivateKey)
            assert KEY_FUNCTION_NOT_PERMITTED in refused_by_token(
                lambda: attacked.derive_key(KeyType.AES, 128, **ecdh)
            ), role
            assert unchangeable(lambda: priv.__setitem__(Attribute.DERIVE, True)), role
            assert unchangeable(lambda: priv.copy({Attribute.DERIVE: True})), role
            assert unchangeable(lambda: priv.__setitem__(Attribute.EXTRACTABLE, True)), role
            assert priv[Attribute.DERIVE] is False  # nothing above changed it

        on_token(worker, label, pin, inspect)


def test_the_template_key_can_only_encrypt_and_decrypt(network: RunningNetwork, worker: TokenWorker) -> None:
    net = network.network
    for spec in net.topology.nodes:
        label = net.token_label(spec)
        pin = (net.node_dir(spec) / "token.pin").read_text().strip()

        def inspect(session: Any, role: str = spec.name) -> None:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=TEMPLATE_KEY_LABEL)
            assert attributes(key, TEMPLATE_SECRET) == TEMPLATE_SECRET, role
            assert "AttributeSensitive" in refused_by_token(lambda: key[Attribute.VALUE])
            secret = session.generate_key(
                KeyType.AES, 128, store=False, template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False}
            )
            loose = session.generate_key(KeyType.AES, 256, store=False)  # python-pkcs11's defaults: wrap, MAC
            try:
                # Control: the permissive key wraps, unwraps and MACs; the template key refuses each at the token.
                unwrap = {"mechanism": Mechanism.AES_KEY_WRAP, "template": {Attribute.TOKEN: False}}
                control = any_use(loose, token_ops.SecretKey)
                wrapped = control.wrap_key(secret, mechanism=Mechanism.AES_KEY_WRAP)
                control.sign(b"data", mechanism=Mechanism.AES_CMAC)
                control.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, **unwrap).destroy()
                attacked = any_use(key, token_ops.SecretKey)
                for operation in (
                    lambda: attacked.wrap_key(secret, mechanism=Mechanism.AES_KEY_WRAP),
                    lambda: attacked.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, **unwrap),
                    lambda: attacked.sign(b"data", mechanism=Mechanism.AES_CMAC),
                ):
                    assert KEY_FUNCTION_NOT_PERMITTED in refused_by_token(operation), role
                assert unchangeable(lambda: key.__setitem__(Attribute.WRAP, True)), role
                assert unchangeable(lambda: key.copy({})), role  # not even a plain copy
            finally:
                secret.destroy()
                loose.destroy()

        on_token(worker, label, pin, inspect)


def test_the_restricted_keys_still_do_their_one_job(network: RunningNetwork, worker: TokenWorker) -> None:
    net = network.network
    spec = net.topology.node("cs:131148")
    pin = (net.node_dir(spec) / "token.pin").read_text().strip()
    with TokenSigner(worker, net.token_label(spec), pin) as signer:
        assert len(signer.sign(b"a batch")) == 64
        nonce, plain = secrets.token_bytes(12), b"a template"
        sealed = signer.encrypt_aes_gcm(TEMPLATE_KEY_LABEL, nonce, plain, b"operator")
        assert signer.decrypt_aes_gcm(TEMPLATE_KEY_LABEL, nonce, sealed, b"operator") == plain
