"""Certificate trust policy: who is the peer, according to the JukiNet PKI?

:meth:`TrustStore.identify` is called on every RPC with the peer's leaf certificate. The expensive part
(parsing, signature check against an issuing CA, extracting and parsing the ``urn:jukinet:`` identities,
checking that the issuing CA may vouch for each of them) is cached per certificate bytes; validity
period, expected issuer kind and revocation are re-checked on every call.
CRLs are reloaded when the CRL file changes (inode, mtime or size), and a missing, forged or unreadable
CRL fails closed. CRL nextUpdate is not enforced: in the dev PKI the CRL is a local file that
:func:`jukinet.pki.revoke` re-issues.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import layout
from jukinet.pki.layout import ISSUER_KINDS, TLS_ISSUER_KINDS, IssuerKind, check_kind

_E = TypeVar("_E", bound=x509.ExtensionType)
Purpose = Literal["tls", "signing", "authentication"]

ISSUER_FOR_KIND: dict[NodeKind, IssuerKind] = {  # which issuing CA may vouch for each kind of identity
    NodeKind.CS: "node",
    NodeKind.PREFECTURE: "node",
    NodeKind.NATIONAL: "node",
    NodeKind.CARD_MANAGEMENT: "node",
    NodeKind.JPKI: "node",
    NodeKind.PORTAL: "node",  # a residents' front end: a node-CA identity that serves nothing (no DNS name)
    NodeKind.AGENCY: "agency",
    NodeKind.TERMINAL: "operator",
    NodeKind.OPERATOR: "operator",
    NodeKind.CARD: "card",
}


def _untrusted(why: str) -> Rejected:
    return Rejected(Problem.UNAUTHENTICATED, why)


@dataclass(frozen=True)
class PeerIdentity:
    """A verified JukiNet identity taken from a certificate."""

    issuer: IssuerKind
    node_ids: tuple[NodeId, ...]
    serial: int
    subject: str
    fingerprint: bytes  # SHA-256 of the certificate's DER
    # "tls": a TLS key (a file); "signing": a key that signs (in a token or a card); "authentication": a
    # resident card's user-authentication key (digitalSignature only: it proves presence, signs no document)
    purpose: Purpose
    certificate: x509.Certificate = field(repr=False, compare=False)

    @property
    def primary(self) -> NodeId:
        """The first node id in the certificate."""
        return self.node_ids[0]

    def names(self, node_id: NodeId) -> bool:
        return node_id in self.node_ids

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)  # _check_chain admits EC P-256 keys only
        return key

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.node_ids)


@dataclass(frozen=True)
class _Checked:
    identity: PeerIdentity
    not_before: dt.datetime
    not_after: dt.datetime
    desc: str


@dataclass
class _Crl:
    stamp: tuple[int, ...] | None = None
    revoked: dict[int, str] = field(default_factory=dict)  # serial -> "at <date> (reason)"
    error: str | None = None


def _load_cert(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


class TrustStore:
    """Root and issuing CA certificates plus CRLs of one PKI directory (no private keys needed)."""

    def __init__(
        self,
        pki_dir: Path,
        root: x509.Certificate,
        cas: dict[IssuerKind, x509.Certificate],
        cache_size: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.pki_dir = pki_dir
        self.clock = clock
        self.root = root
        self.cas = cas
        tls_cas = [cas[k] for k in TLS_ISSUER_KINDS if k in cas]
        pems = [c.public_bytes(serialization.Encoding.PEM) for c in (root, *tls_cas)]
        self.bundle_pem: bytes = b"".join(pems)  # TLS roots: never the card CA
        self._cache: OrderedDict[bytes, _Checked] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._crls: dict[IssuerKind, _Crl] = {k: _Crl() for k in cas}
        self._crl_lock = threading.Lock()

    @classmethod
    def load(cls, pki_dir: Path, *, cache_size: int = 4096, clock: Clock = SYSTEM_CLOCK) -> TrustStore:
        """Read the root and issuing CA certificates of ``pki_dir`` and check the issuing CAs chain up."""
        pki_dir = Path(pki_dir)
        root = x509.load_pem_x509_certificate(layout.root_cert_path(pki_dir).read_bytes())
        cas: dict[IssuerKind, x509.Certificate] = {}
        for kind in ISSUER_KINDS:
            path = layout.ca_cert_path(pki_dir, kind)
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature) as e:
                raise Rejected(Problem.BROKEN, f"{path} is not issued by the root CA in {pki_dir}: {e}") from None
            cas[kind] = cert
        return cls(pki_dir, root, cas, cache_size, clock)

    def identify(
        self,
        cert: bytes,
        *,
        expect: IssuerKind | Collection[IssuerKind] | None = None,
        purpose: Purpose | None = None,
    ) -> PeerIdentity:
        """Verify a leaf certificate (PEM or DER) and return who it identifies.

        Raises Rejected (UNAUTHENTICATED) if it is not issued by one of our issuing CAs (of kind ``expect``
        if given), is outside its validity period, is revoked, carries no ``urn:jukinet:`` identity, or
        names an identity its CA may not vouch for (the operator CA cannot issue ``cs:131148``).
        """
        with self._lock:
            checked = self._cache.get(cert)
            if checked is not None:
                self._cache.move_to_end(cert)
        if checked is None:
            checked = self._check_chain(cert)
            with self._lock:
                self._cache[cert] = checked
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        ident = checked.identity
        if expect is not None:
            wanted = {check_kind(expect)} if isinstance(expect, str) else {check_kind(k) for k in expect}
            if ident.issuer not in wanted:
                raise _untrusted(
                    f"{checked.desc} is a {ident.issuer} certificate, expected {' or '.join(sorted(wanted))}"
                )
        if purpose is not None and ident.purpose != purpose:
            raise _untrusted(f"{checked.desc} is a {ident.purpose} certificate, not a {purpose} certificate")
        now = dt.datetime.fromtimestamp(self.clock.now_ms() / 1000, dt.UTC)
        if now < checked.not_before:
            raise _untrusted(f"{checked.desc} is not valid before {checked.not_before.isoformat()}")
        if now > checked.not_after:
            raise _untrusted(f"{checked.desc} expired on {checked.not_after.isoformat()}")
        crl = self._crl(ident.issuer)
        if crl.error:
            raise _untrusted(f"cannot check revocation of {checked.desc}: {crl.error}")
        revoked = crl.revoked.get(ident.serial)
        if revoked is not None:
            raise _untrusted(f"{checked.desc} was revoked {revoked}")
        return ident

    def identify_as(self, cert: bytes, expected: NodeId, purpose: Purpose = "signing") -> PeerIdentity:
        """:meth:`identify`, and the certificate must name ``expected`` (Rejected DENIED otherwise)."""
        ident = self.identify(cert, expect=ISSUER_FOR_KIND[expected.kind], purpose=purpose)
        if not ident.names(expected):
            raise Rejected(Problem.DENIED, f"the certificate names {ident}, not {expected}")
        return ident

    def is_revoked(self, issuer: IssuerKind, serial: int) -> bool:
        """True if ``serial`` is on the current CRL of ``issuer`` (Rejected if there is no usable CRL)."""
        crl = self._crl(check_kind(issuer))
        if crl.error:
            raise _untrusted(crl.error)
        return serial in crl.revoked

    def _check_chain(self, data: bytes) -> _Checked:
        try:
            cert = _load_cert(data)
        except ValueError as e:
            raise _untrusted(f"not a parseable X.509 certificate: {e}") from None
        issuer_name = cert.issuer.rfc4514_string()
        desc = f"certificate serial 0x{cert.serial_number:x} issued by {issuer_name}"
        kind: IssuerKind | None = None
        name_matched = False
        for k, ca in self.cas.items():
            if cert.issuer == ca.subject:
                name_matched = True
                try:
                    cert.verify_directly_issued_by(ca)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                kind = k
                break
        if kind is None:
            hint = " (issuer name matches but the signature does not verify: foreign CA?)" if name_matched else ""
            raise _untrusted(f"{desc} is not from a JukiNet issuing CA{hint}")
        try:
            bc = _ext(cert.extensions, x509.BasicConstraints)
            san = _ext(cert.extensions, x509.SubjectAlternativeName)
            eku = _ext(cert.extensions, x509.ExtendedKeyUsage)
            ku = _ext(cert.extensions, x509.KeyUsage)
        except ValueError as e:
            raise _untrusted(f"{desc} has malformed extensions: {e}") from None
        uris = san.get_values_for_type(x509.UniformResourceIdentifier) if san else []
        if bc is not None and bc.ca:
            raise _untrusted(f"{desc} is a CA certificate, not an end-entity certificate")
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise _untrusted(f"{desc} is not for an EC P-256 key")
        names = tuple(dict.fromkeys(n for n in map(layout.parse_urn, uris) if n))
        if not names:
            raise _untrusted(f"{desc} carries no urn:jukinet: identity")
        try:
            node_ids = tuple(NodeId.parse(n) for n in names)
        except Rejected as e:
            raise _untrusted(f"{desc}: {e}") from None
        for node_id in node_ids:
            if ISSUER_FOR_KIND[node_id.kind] != kind:
                raise _untrusted(
                    f"{desc} names {node_id}, which the {kind} CA may not vouch for "
                    f"(the {ISSUER_FOR_KIND[node_id.kind]} CA does)"
                )
        purpose = _purpose(eku, ku)
        if purpose is None:
            raise _untrusted(f"{desc} is neither a TLS certificate nor a signing certificate")
        fingerprint = cert.fingerprint(hashes.SHA256())
        subject = cert.subject.rfc4514_string()
        ident = PeerIdentity(kind, node_ids, cert.serial_number, subject, fingerprint, purpose, cert)
        desc = f"certificate serial 0x{cert.serial_number:x} for {ident} issued by {issuer_name}"
        return _Checked(ident, cert.not_valid_before_utc, cert.not_valid_after_utc, desc)

    def _crl(self, kind: IssuerKind) -> _Crl:
        path = layout.crl_path(self.pki_dir, kind)
        try:
            st = os.stat(path)
            stamp: tuple[int, ...] | None = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        current = self._crls[kind]
        if current.stamp == stamp and stamp is not None:
            return current
        with self._crl_lock:
            current = self._crls[kind]
            if current.stamp != stamp or stamp is None:
                current = self._read_crl(kind, path, stamp)
                self._crls[kind] = current
        return current

    def _read_crl(self, kind: IssuerKind, path: Path, stamp: tuple[int, ...] | None) -> _Crl:
        ca = self.cas[kind]
        try:
            crl = x509.load_pem_x509_crl(path.read_bytes())
        except (OSError, ValueError) as e:
            return _Crl(stamp, error=f"CRL of the {kind} CA ({path}) is unreadable: {e}")
        if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
            return _Crl(stamp, error=f"CRL {path} is not signed by the {kind} CA")
        revoked: dict[int, str] = {}
        for entry in crl:
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
            except x509.ExtensionNotFound:
                reason = "unspecified"
            revoked[entry.serial_number] = f"at {entry.revocation_date_utc.isoformat()} (reason: {reason})"
        return _Crl(stamp, revoked)


def _purpose(eku: x509.ExtendedKeyUsage | None, ku: x509.KeyUsage | None) -> Purpose | None:
    """What a certificate's key may do (the profiles of jukinet.pki.ca): TLS keys are files and carry an
    EKU; signing keys live in tokens and cards, carry nonRepudiation and no EKU. A stolen TLS key file
    must not be able to sign a batch or a receipt. A card's authentication key carries digitalSignature
    alone, so its certificate is never taken as a signing one (nor the other way round)."""
    if eku is not None:
        allowed = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
        return "tls" if set(eku) <= allowed and ExtendedKeyUsageOID.CLIENT_AUTH in set(eku) else None
    if ku is not None and ku.digital_signature and ku.content_commitment:
        return "signing"
    if ku is not None and ku.digital_signature:
        return "authentication"
    return None


def _ext(extensions: x509.Extensions, cls: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None
