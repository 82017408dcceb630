"""Tests for jukinet.pki: dev PKI creation, issuance, revocation, trust policy and raw ECDSA helpers."""

from __future__ import annotations

import datetime as dt
import stat
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jukinet.clients.transport import channel_options
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki import (
    TrustStore,
    find_issued,
    generate_key,
    init_pki,
    issue_signing_certificate,
    issue_tls_certificate,
    key_id,
    load_private_key,
    revoke,
    sign_ecdsa_raw,
    verify_ecdsa_raw,
)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    init_pki(d)
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_init_pki_is_idempotent_and_keys_are_private(pki: Path) -> None:
    before = _snapshot(pki)
    assert {"root-ca.pem", "trust-bundle.pem", "node-ca.pem", "crl/agency.crl.pem"} <= before.keys()
    init_pki(pki)
    assert _snapshot(pki) == before
    keys = sorted((pki / "private").glob("*.key"))
    assert [k.name for k in keys] == ["agency-ca.key", "card-ca.key", "node-ca.key", "operator-ca.key", "root-ca.key"]
    assert all(_mode(k) == 0o600 for k in keys)
    assert TrustStore.load(pki).bundle_pem.count(b"BEGIN CERTIFICATE") == 4  # the card CA is no TLS root


def test_tls_certificates_identify(pki: Path, tmp_path: Path) -> None:
    ts = TrustStore.load(pki)
    cases = [
        ("node", ["cs:131148"]),
        ("node", ["pref:13", "pref:14"]),
        ("node", ["national"]),
        ("operator", ["terminal:131148:counter-1"]),
        ("agency", ["agency:7123456789012"]),
    ]
    for i, (kind, ids) in enumerate(cases):
        cert_path, key_path = issue_tls_certificate(pki, kind, ids, tmp_path / "out", name=f"c{i}")
        assert _mode(key_path) == 0o600
        pem = cert_path.read_bytes()
        assert pem.count(b"BEGIN CERTIFICATE") == 2  # leaf + issuing CA
        ident = ts.identify(pem, expect=kind)
        assert (ident.issuer, tuple(map(str, ident.node_ids)), str(ident.primary)) == (kind, tuple(ids), ids[0])
        leaf = x509.load_pem_x509_certificate(pem)
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if kind == "node":  # only nodes may serve, and only under their own TLS names
            assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
            assert san.get_values_for_type(x509.DNSName) == [NodeId.parse(i).tls_name for i in ids]
        else:
            assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
            assert san.get_values_for_type(x509.DNSName) == []
        assert san.get_values_for_type(x509.IPAddress) == []  # no blanket localhost / 127.0.0.1
        assert ident.serial == leaf.serial_number
        der = leaf.public_bytes(Encoding.DER)
        assert ts.identify(der) == ident  # DER works too
        assert ts.identify(pem) is ident  # cache hit
    assert [r.node_ids for r in find_issued(pki, "pref:14")] == [("pref:13", "pref:14")]


def test_foreign_ca_rejected(pki: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    init_pki(foreign)  # same CA names, unrelated keys
    cert_path, _ = issue_tls_certificate(foreign, "node", ["cs:131148"], tmp_path / "f")
    with pytest.raises(Rejected, match="is not from a JukiNet issuing CA"):
        TrustStore.load(pki).identify(cert_path.read_bytes())


def test_revoked_certificate_rejected_by_same_store(pki: Path, tmp_path: Path) -> None:
    ts = TrustStore.load(pki)
    cert_path, _ = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path / "o")
    other_path, _ = issue_tls_certificate(pki, "node", ["cs:131130"], tmp_path / "o", name="other")
    ident = ts.identify(cert_path.read_bytes())
    revoke(pki, "node", ident.serial, x509.ReasonFlags.key_compromise)
    revoke(pki, "node", ident.serial)  # already revoked: no-op
    with pytest.raises(Rejected, match=r"was revoked at .*keyCompromise"):
        ts.identify(cert_path.read_bytes())
    assert str(ts.identify(other_path.read_bytes()).primary) == "cs:131130"
    assert ts.is_revoked("node", ident.serial)
    with pytest.raises(Rejected, match="was revoked"):
        TrustStore.load(pki).identify(cert_path.read_bytes())


def test_expect_mismatch_rejected(pki: Path, tmp_path: Path) -> None:
    cert_path, _ = issue_tls_certificate(pki, "agency", ["agency:7123456789012"], tmp_path / "o")
    ts = TrustStore.load(pki)
    with pytest.raises(Rejected, match="is a agency certificate, expected node"):
        ts.identify(cert_path.read_bytes(), expect="node")
    assert ts.identify(cert_path.read_bytes(), expect=("node", "agency")).issuer == "agency"


def test_expired_certificate_rejected(pki: Path, tmp_path: Path) -> None:
    cert_path, _ = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path / "o", days=-1)
    with pytest.raises(Rejected, match="expired on"):
        TrustStore.load(pki).identify(cert_path.read_bytes())


def _raw_leaf(pki: Path, sans: list[x509.GeneralName], ca: bool = False) -> bytes:
    ca_cert = x509.load_pem_x509_certificate((pki / "node-ca.pem").read_bytes())
    ca_key = load_private_key(pki / "private" / "node-ca.key")
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(ca_cert.subject)
        .public_key(generate_key().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)


def test_missing_identity_ca_cert_and_garbage_rejected(pki: Path) -> None:
    ts = TrustStore.load(pki)
    with pytest.raises(Rejected, match="carries no urn:jukinet: identity"):
        ts.identify(_raw_leaf(pki, [x509.UniformResourceIdentifier("urn:other:x"), x509.DNSName("a")]))
    with pytest.raises(Rejected, match="not an end-entity"):
        ts.identify(_raw_leaf(pki, [x509.UniformResourceIdentifier("urn:jukinet:national")], ca=True))
    with pytest.raises(Rejected, match="not a parseable"):
        ts.identify(b"garbage")


def test_forged_crl_fails_closed(pki: Path, tmp_path: Path) -> None:
    cert_path, _ = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path / "o")
    ts = TrustStore.load(pki)
    ts.identify(cert_path.read_bytes())
    init_pki(tmp_path / "foreign")
    (pki / "crl" / "node.crl.pem").write_bytes((tmp_path / "foreign" / "crl" / "node.crl.pem").read_bytes())
    with pytest.raises(Rejected, match=r"cannot check revocation.*not signed by the node CA"):
        ts.identify(cert_path.read_bytes())


def test_cache_is_bounded(pki: Path, tmp_path: Path) -> None:
    ts = TrustStore.load(pki, cache_size=2)
    for i, code in enumerate(("131148", "131016", "131130")):
        cert_path, _ = issue_tls_certificate(pki, "node", [f"cs:{code}"], tmp_path / "o", name=f"c{i}")
        ts.identify(cert_path.read_bytes())
    assert len(ts._cache) == 2


def test_signing_certificate(pki: Path) -> None:
    key = generate_key()
    cert = issue_signing_certificate(pki, "operator", ["terminal:13:desk-2"], key.public_key())
    assert key_id(cert.public_key()) == key_id(key.public_key())
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    pem = cert.public_bytes(Encoding.PEM)
    assert TrustStore.load(pki).identify(pem, expect="operator").node_ids == (NodeId.parse("terminal:13:desk-2"),)
    with pytest.raises(Rejected, match="P-256"):
        issue_signing_certificate(pki, "node", ["national"], ec.generate_private_key(ec.SECP384R1()).public_key())


def test_verify_ecdsa_raw() -> None:
    key = generate_key()
    sig = sign_ecdsa_raw(key, b"resident record")
    assert len(sig) == 64 and len(key_id(key.public_key())) == 32
    verify_ecdsa_raw(key.public_key(), b"resident record", sig)
    with pytest.raises(Rejected, match="does not verify"):
        verify_ecdsa_raw(key.public_key(), b"resident recorD", sig)
    with pytest.raises(Rejected, match="does not verify"):
        verify_ecdsa_raw(generate_key().public_key(), b"resident record", sig)
    with pytest.raises(Rejected, match="must be 64 bytes"):
        verify_ecdsa_raw(key.public_key(), b"resident record", sig[:63])
    with pytest.raises(Rejected):
        verify_ecdsa_raw(key.public_key(), b"resident record", bytes(64))


def test_grpc_mutual_tls_with_identify(pki: Path, tmp_path: Path) -> None:
    """The issued material works with gRPC mTLS, and the peer cert from auth_context identifies."""
    ts = TrustStore.load(pki)
    srv_cert, srv_key = issue_tls_certificate(pki, "node", ["pref:13"], tmp_path / "srv")
    cli_cert, cli_key = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path / "cli")

    def who(_req: bytes, ctx: grpc.ServicerContext) -> bytes:
        return str(ts.identify(ctx.auth_context()["x509_pem_cert"][0], expect="node").primary).encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Who", {"Am": grpc.unary_unary_rpc_method_handler(who)}),)
    )
    creds = grpc.ssl_server_credentials(
        [(srv_key.read_bytes(), srv_cert.read_bytes())], ts.bundle_pem, require_client_auth=True
    )
    port = server.add_secure_port("localhost:0", creds)
    server.start()
    try:
        chan_creds = grpc.ssl_channel_credentials(ts.bundle_pem, cli_key.read_bytes(), cli_cert.read_bytes())
        options = channel_options("pref:13")
        with grpc.secure_channel(f"localhost:{port}", chan_creds, options=options) as channel:
            assert channel.unary_unary("/test.Who/Am")(b"", timeout=5) == b"cs:131148"
    finally:
        server.stop(None)


def test_a_ca_vouches_only_for_its_own_kinds_of_identity(pki: Path) -> None:
    """The node CA cannot make a terminal, nor the operator CA a node (caught however it was issued)."""
    leaf = _raw_leaf(pki, [x509.UniformResourceIdentifier("urn:jukinet:terminal:131148:ops")])
    with pytest.raises(Rejected, match="names terminal:131148:ops, which the node CA may not vouch for") as exc:
        TrustStore.load(pki).identify(leaf)
    assert exc.value.problem is Problem.UNAUTHENTICATED


def _serve(pki: Path, cert: Path, key: Path) -> tuple[grpc.Server, int]:
    ts = TrustStore.load(pki)

    def echo(request: bytes, ctx: grpc.ServicerContext) -> bytes:
        return request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(echo)}),)
    )
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())], ts.bundle_pem, True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port


@pytest.mark.parametrize(
    ("kind", "identity", "why"),
    [
        ("node", "pref:13", None),
        ("node", "cs:131016", "Hostname"),  # another node: it cannot answer as pref:13
        ("agency", "agency:7123456789012", "CERTIFICATE_VERIFY_FAILED"),  # clientAuth only: cannot serve at all
        ("operator", "terminal:13:ops", "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_a_client_reaches_only_the_node_it_expects(pki: Path, tmp_path: Path, kind, identity, why) -> None:
    srv_cert, srv_key = issue_tls_certificate(pki, kind, [identity], tmp_path / "srv")
    cli_cert, cli_key = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path / "cli")
    server, port = _serve(pki, srv_cert, srv_key)
    try:
        creds = grpc.ssl_channel_credentials(
            TrustStore.load(pki).bundle_pem, cli_key.read_bytes(), cli_cert.read_bytes()
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=channel_options("pref:13")) as channel:
            say = channel.unary_unary("/test.Echo/Say")
            if why is None:
                assert say(b"hello", timeout=5) == b"hello"
            else:
                with pytest.raises(grpc.RpcError) as exc:
                    say(b"hello", timeout=5)
                assert exc.value.code() == grpc.StatusCode.UNAVAILABLE and why in exc.value.details()
    finally:
        server.stop(None)


def test_tls_and_signing_certificates_are_told_apart(pki: Path, tmp_path: Path) -> None:
    ts = TrustStore.load(pki)
    tls, _ = issue_tls_certificate(pki, "node", ["cs:131148"], tmp_path)
    signing = issue_signing_certificate(pki, "node", ["cs:131148"], generate_key().public_key()).public_bytes(
        Encoding.PEM
    )
    assert ts.identify(tls.read_bytes(), purpose="tls").purpose == "tls"
    assert ts.identify(signing, purpose="signing").purpose == "signing"
    with pytest.raises(Rejected, match="is a tls certificate, not a signing certificate"):
        ts.identify(tls.read_bytes(), purpose="signing")
    with pytest.raises(Rejected, match="is a signing certificate, not a tls certificate"):
        ts.identify(signing, purpose="tls")
