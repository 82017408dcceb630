"""The JukiNet development PKI: root CA, issuing CAs, certificate issuance and revocation.

This is a *development* PKI: CA private keys are plain PEM files (mode 0600) under ``pki_dir/private``.
In production the CA keys would live in an HSM and issuance would be an audited ceremony. Generated
material must never be committed. See :mod:`jukinet.pki.layout` for the directory layout.

Tests that need a "foreign CA" simply call :func:`init_pki` on another directory: the result has the
same names but unrelated keys, so nothing it issues verifies against the first PKI.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jukinet.domain.cards import CardFace
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki import layout
from jukinet.pki.card_profile import face_names
from jukinet.pki.keys import generate_key, load_private_key, write_private_key
from jukinet.pki.layout import ISSUER_KINDS, TLS_ISSUER_KINDS, IssuerKind, atomic_write, check_kind, locked

Purpose = Literal["tls", "signing", "authentication"]

_ORG = "JukiNet (development PKI)"
_ROOT_CN = "JukiNet Root CA"
_CA_CN: dict[IssuerKind, str] = {
    "node": "JukiNet Node CA",
    "operator": "JukiNet Operator CA",
    "agency": "JukiNet Agency CA",
    "card": "JukiNet Card CA",
}
_ROOT_DAYS = 20 * 365
_CA_DAYS = 10 * 365
_CRL_DAYS = 30
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between nodes
CARD_CERTIFICATE_DAYS = 5 * 365  # JPKI's certificates are valid for five years


@dataclass(frozen=True)
class IssuedCertificate:
    """One line of the issued-certificate index (lets operators revoke by node id)."""

    issuer: IssuerKind
    serial: int
    purpose: Purpose
    node_ids: tuple[str, ...]
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ku(*, cert_sign: bool = False, non_repudiation: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """Common fields; ``issuer=None`` means self-signed."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    aki_source = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value if issuer else ski
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(aki_source), critical=False)
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_crl(
    pki_dir: Path,
    kind: IssuerKind,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    entries: Iterable[x509.RevokedCertificate],
    number: int,
) -> None:
    now = _now()
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + dt.timedelta(days=_CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    atomic_write(layout.crl_path(pki_dir, kind), crl.public_bytes(serialization.Encoding.PEM))


def _new_issuing_ca(
    pki_dir: Path, kind: IssuerKind, root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey
) -> bytes:
    now = _now()
    key = generate_key()
    cert = (
        _builder(_name(_CA_CN[kind]), key.public_key(), root, now, now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ku(cert_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    write_private_key(layout.ca_key_path(pki_dir, kind), key)
    atomic_write(layout.ca_cert_path(pki_dir, kind), _pem(cert))
    _write_crl(pki_dir, kind, cert, key, (), 1)
    return _pem(cert)


def _write_bundle(pki_dir: Path, root: x509.Certificate) -> None:
    """The TLS trust bundle: the root and the issuing CAs whose certificates may appear in a handshake."""
    pems = [layout.ca_cert_path(pki_dir, kind).read_bytes() for kind in TLS_ISSUER_KINDS]
    atomic_write(layout.bundle_path(pki_dir), b"".join([_pem(root), *pems]))


def init_pki(pki_dir: Path) -> None:
    """Create the root CA, the issuing CAs (node, operator, agency, card) and an empty CRL for each.

    Idempotent: an initialised PKI (``pki_dir/root-ca.pem`` exists) is left as it is, except that an
    issuing CA it lacks (a PKI made before the card CA existed) is added under its root. Safe against
    concurrent callers.
    """
    pki_dir = Path(pki_dir)
    with locked(pki_dir):
        if layout.root_cert_path(pki_dir).exists():
            missing = [k for k in ISSUER_KINDS if not layout.ca_cert_path(pki_dir, k).exists()]
            if missing:
                root = x509.load_pem_x509_certificate(layout.root_cert_path(pki_dir).read_bytes())
                root_key = load_private_key(layout.ca_key_path(pki_dir, "root"))
                for kind in missing:
                    _new_issuing_ca(pki_dir, kind, root, root_key)
                _write_bundle(pki_dir, root)
            return
        private = pki_dir / "private"
        private.mkdir(mode=0o700, exist_ok=True)
        private.chmod(0o700)
        now = _now()
        root_key = generate_key()
        root = (
            _builder(_name(_ROOT_CN), root_key.public_key(), None, now, now + dt.timedelta(days=_ROOT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ku(cert_sign=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        write_private_key(layout.ca_key_path(pki_dir, "root"), root_key)
        for kind in ISSUER_KINDS:
            _new_issuing_ca(pki_dir, kind, root, root_key)
        _write_bundle(pki_dir, root)
        atomic_write(layout.root_cert_path(pki_dir), _pem(root))  # last: marks the PKI as complete


def _load_ca(pki_dir: Path, kind: IssuerKind) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_file = layout.ca_cert_path(pki_dir, kind)
    if not layout.root_cert_path(pki_dir).exists():
        raise Rejected(Problem.NOT_FOUND, f"no JukiNet PKI in {pki_dir} (run `jukinet pki init` first)")
    return x509.load_pem_x509_certificate(cert_file.read_bytes()), load_private_key(layout.ca_key_path(pki_dir, kind))


def _issue(
    pki_dir: Path,
    issuer: IssuerKind,
    node_ids: Sequence[str],
    public_key: ec.EllipticCurvePublicKey,
    days: int,
    purpose: Purpose,
    extra_sans: Sequence[x509.GeneralName] = (),
    subject: x509.Name | None = None,
) -> x509.Certificate:
    """Sign a leaf certificate for ``node_ids`` and record it in the index.

    ``days <= 0`` yields an already-expired certificate (useful in tests). Validity is capped at the
    issuing CA's own expiry.
    """
    pki_dir = Path(pki_dir)
    check_kind(issuer)
    if isinstance(node_ids, str) or not node_ids:
        raise Rejected(Problem.INVALID, "node_ids must be a non-empty sequence of node ids")
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise Rejected(Problem.INVALID, "JukiNet certificates are for EC P-256 keys only")
    urns = [x509.UniformResourceIdentifier(layout.node_urn(n)) for n in node_ids]
    ca_cert, ca_key = _load_ca(pki_dir, issuer)
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    not_before = min(now - _BACKDATE, not_after - dt.timedelta(days=1))
    builder = (
        _builder(subject or _name(node_ids[0]), public_key, ca_cert, not_before, not_after)
        .add_extension(x509.SubjectAlternativeName([*urns, *extra_sans]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if purpose == "tls":
        serves = issuer == "node" and all(NodeId.parse(n).is_node for n in node_ids)  # a portal only calls
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if serves else []
        eku = x509.ExtendedKeyUsage([*usages, ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(_ku(), critical=True).add_extension(eku, critical=False)
    elif purpose == "authentication":  # a card's user-authentication key: digitalSignature only
        builder = builder.add_extension(_ku(), critical=True)
    else:
        builder = builder.add_extension(_ku(non_repudiation=True), critical=True)
    cert = builder.sign(ca_key, hashes.SHA256())
    record = {
        "serial": format(cert.serial_number, "x"),
        "purpose": purpose,
        "node_ids": list(node_ids),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
    with locked(pki_dir):
        index = layout.index_path(pki_dir, issuer)
        index.parent.mkdir(exist_ok=True)
        with open(index, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return cert


def issue_tls_certificate(
    pki_dir: Path,
    issuer: IssuerKind,
    node_ids: Sequence[str],
    out_dir: Path,
    name: str = "tls",
    days: int = 365,
) -> tuple[Path, Path]:
    """Issue a TLS certificate with a fresh key.

        Profiles: a node certificate (node CA) may serve and call: EKU serverAuth + clientAuth, and a DNS
        SAN with each node's TLS name (``cs-131148.node.jukinet.internal``) that clients verify in the
        handshake. Every other certificate (operator terminals, agencies, a residents' portal — node CA, but
    not a node) may only call: EKU clientAuth and
        no DNS name, so it can never stand in for a node. Writes ``out_dir/<name>.key`` (0600) and
        ``out_dir/<name>.pem`` (leaf, then the issuing CA) and returns ``(cert_path, key_path)``.
    """
    key = generate_key()
    sans: list[x509.GeneralName] = []
    if issuer == "node":
        sans = [x509.DNSName(NodeId.parse(n).tls_name) for n in node_ids if NodeId.parse(n).is_node]
    cert = _issue(pki_dir, issuer, node_ids, key.public_key(), days, "tls", sans)
    out_dir = Path(out_dir)
    cert_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    write_private_key(key_path, key)
    atomic_write(cert_path, _pem(cert) + layout.ca_cert_path(Path(pki_dir), issuer).read_bytes())
    return cert_path, key_path


def issue_signing_certificate(
    pki_dir: Path,
    issuer: IssuerKind,
    node_ids: Sequence[str],
    public_key: ec.EllipticCurvePublicKey,
    days: int = 365,
) -> x509.Certificate:
    """Certify a signing key held elsewhere (e.g. a PKCS#11 token): KeyUsage digitalSignature +
    nonRepudiation, no EKU (so it cannot serve as a TLS certificate)."""
    return _issue(pki_dir, issuer, node_ids, public_key, days, "signing")


def issue_card_auth_certificate(
    pki_dir: Path, card_serial: str, public_key: ec.EllipticCurvePublicKey, days: int = CARD_CERTIFICATE_DAYS
) -> x509.Certificate:
    """The card CA certifies a card's user-authentication key (利用者証明用): subject and SAN name only the
    card (``urn:jukinet:card:<serial>``), no personal data; KeyUsage digitalSignature only, no EKU.

    A card serial is certified for one card nationally: Rejected (ALREADY_EXISTS) while an authentication
    certificate the card CA issued for that serial is not revoked (a serial is readable without the PIN;
    certifying it again for another key would make a clone)."""
    card = NodeId.card(card_serial)
    earlier = [c.serial for c in find_issued(pki_dir, str(card), "card") if c.purpose == "authentication"]
    if earlier:
        crl = x509.load_pem_x509_crl(layout.crl_path(Path(pki_dir), "card").read_bytes())
        live = [s for s in earlier if crl.get_revoked_certificate_by_serial_number(s) is None]
        if live:
            raise Rejected(
                Problem.ALREADY_EXISTS,
                f"the card CA has certified card {card_serial} already (certificate 0x{live[0]:x}); "
                "a card serial is certified for one card only",
            )
    return _issue(pki_dir, "card", [str(card)], public_key, days, "authentication")


def issue_card_signature_certificate(
    pki_dir: Path,
    card_serial: str,
    public_key: ec.EllipticCurvePublicKey,
    face: CardFace,
    days: int = CARD_CERTIFICATE_DAYS,
) -> x509.Certificate:
    """The card CA certifies a card's signature key (署名用): the SAN names the card and carries the card
    face (name, birth date, sex, address; jukinet.pki.card_profile), the subject's common name is the
    holder's name; KeyUsage digitalSignature + nonRepudiation."""
    card = NodeId.card(card_serial)
    return _issue(
        pki_dir, "card", [str(card)], public_key, days, "signing", face_names(face), _name(face.name[:64])
    )  # CN ≤ 64; the SAN has it all


def revoke(
    pki_dir: Path,
    issuer: IssuerKind,
    serial: int,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
) -> None:
    """Revoke ``serial`` of the ``issuer`` CA and re-issue that CA's CRL (no-op if already revoked)."""
    revoke_all(pki_dir, issuer, [serial], reason)


def revoke_all(
    pki_dir: Path,
    issuer: IssuerKind,
    serials: Iterable[int],
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
) -> None:
    """Revoke every serial of ``serials`` in ONE new CRL of the ``issuer`` CA (readers never see half of
    them); the ones already revoked are left as they are, and nothing is written if none is new."""
    pki_dir = Path(pki_dir)
    check_kind(issuer)
    serials = list(serials)
    wrong = [s for s in serials if not 0 < s < 1 << 159]
    if wrong:  # before the lock and the CRL: nothing is written for a batch with one bad serial
        raise ValueError(f"certificate serial 0x{wrong[0]:x} is not a positive integer below 2^159")
    with locked(pki_dir):
        ca_cert, ca_key = _load_ca(pki_dir, issuer)
        old = x509.load_pem_x509_crl(layout.crl_path(pki_dir, issuer).read_bytes())
        entries = []
        for serial in dict.fromkeys(serials):
            if old.get_revoked_certificate_by_serial_number(serial) is not None:
                continue
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_now())
            if reason != x509.ReasonFlags.unspecified:  # RFC 5280: omit the extension rather than "unspecified"
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            entries.append(entry.build())
        if not entries:
            return
        number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        _write_crl(pki_dir, issuer, ca_cert, ca_key, [*old, *entries], number)


def find_issued(pki_dir: Path, node_id: str | None = None, issuer: IssuerKind | None = None) -> list[IssuedCertificate]:
    """Issued certificates from the index, optionally only those naming ``node_id`` / from ``issuer``."""
    found = []
    for kind in (check_kind(issuer),) if issuer else ISSUER_KINDS:
        index = layout.index_path(Path(pki_dir), kind)
        if not index.exists():
            continue
        for line in index.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if node_id is None or node_id in rec["node_ids"]:
                found.append(
                    IssuedCertificate(
                        issuer=kind,
                        serial=int(rec["serial"], 16),
                        purpose=rec["purpose"],
                        node_ids=tuple(rec["node_ids"]),
                        not_after=dt.datetime.fromisoformat(rec["not_after"]),
                    )
                )
    return found
