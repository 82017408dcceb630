"""Certificate trust policy: who is the peer, according to the JukiNet PKI?

:meth:`TrustStore.identify` is called on every RPC with the peer's leaf certificate. The expensive part
(parsing, signature check against an issuing CA, extracting ``urn:jukinet:`` identities) is cached per
certificate bytes; validity period, expected issuer kind and revocation are re-checked on every call.
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
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from jukinet.pki import layout
from jukinet.pki.layout import ISSUER_KINDS, IssuerKind, check_kind

_E = TypeVar("_E", bound=x509.ExtensionType)


class UntrustedCertificate(Exception):
    """The certificate is not acceptable; ``str(e)`` (and ``e.reason``) is a human diagnostic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PeerIdentity:
    """A verified JukiNet identity taken from a certificate."""

    issuer: IssuerKind
    node_ids: tuple[str, ...]
    serial: int
    subject: str
    certificate: x509.Certificate = field(repr=False, compare=False)

    def primary(self) -> str:
        """The first node id in the certificate."""
        return self.node_ids[0]


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
        self, pki_dir: Path, root: x509.Certificate, cas: dict[IssuerKind, x509.Certificate], cache_size: int
    ) -> None:
        self.pki_dir = pki_dir
        self.root = root
        self.cas = cas
        pems = [c.public_bytes(serialization.Encoding.PEM) for c in (root, *cas.values())]
        self.bundle_pem: bytes = b"".join(pems)
        self._cache: OrderedDict[bytes, _Checked] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._crls: dict[IssuerKind, _Crl] = {k: _Crl() for k in cas}
        self._crl_lock = threading.Lock()

    @classmethod
    def load(cls, pki_dir: Path, *, cache_size: int = 4096) -> TrustStore:
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
                raise ValueError(f"{path} is not issued by the root CA in {pki_dir}: {e}") from None
            cas[kind] = cert
        return cls(pki_dir, root, cas, cache_size)

    def identify(self, cert: bytes, *, expect: IssuerKind | Collection[IssuerKind] | None = None) -> PeerIdentity:
        """Verify a leaf certificate (PEM or DER) and return who it identifies.

        Raises UntrustedCertificate if it is not issued by one of our issuing CAs (of kind ``expect`` if
        given), is outside its validity period, is revoked, or carries no ``urn:jukinet:`` identity.
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
                raise UntrustedCertificate(
                    f"{checked.desc} is a {ident.issuer} certificate, expected {' or '.join(sorted(wanted))}"
                )
        now = dt.datetime.now(dt.UTC)
        if now < checked.not_before:
            raise UntrustedCertificate(f"{checked.desc} is not valid before {checked.not_before.isoformat()}")
        if now > checked.not_after:
            raise UntrustedCertificate(f"{checked.desc} expired on {checked.not_after.isoformat()}")
        crl = self._crl(ident.issuer)
        if crl.error:
            raise UntrustedCertificate(f"cannot check revocation of {checked.desc}: {crl.error}")
        revoked = crl.revoked.get(ident.serial)
        if revoked is not None:
            raise UntrustedCertificate(f"{checked.desc} was revoked {revoked}")
        return ident

    def is_revoked(self, issuer: IssuerKind, serial: int) -> bool:
        """True if ``serial`` is on the current CRL of ``issuer`` (raises UntrustedCertificate if no CRL)."""
        crl = self._crl(check_kind(issuer))
        if crl.error:
            raise UntrustedCertificate(crl.error)
        return serial in crl.revoked

    def _check_chain(self, data: bytes) -> _Checked:
        try:
            cert = _load_cert(data)
        except ValueError as e:
            raise UntrustedCertificate(f"not a parseable X.509 certificate: {e}") from None
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
            raise UntrustedCertificate(f"{desc} is not from a JukiNet issuing CA{hint}")
        try:
            bc = _ext(cert.extensions, x509.BasicConstraints)
            san = _ext(cert.extensions, x509.SubjectAlternativeName)
        except ValueError as e:
            raise UntrustedCertificate(f"{desc} has malformed extensions: {e}") from None
        uris = san.get_values_for_type(x509.UniformResourceIdentifier) if san else []
        if bc is not None and bc.ca:
            raise UntrustedCertificate(f"{desc} is a CA certificate, not an end-entity certificate")
        node_ids = tuple(dict.fromkeys(n for n in map(layout.parse_urn, uris) if n))
        if not node_ids:
            raise UntrustedCertificate(f"{desc} carries no urn:jukinet: identity")
        ident = PeerIdentity(kind, node_ids, cert.serial_number, cert.subject.rfc4514_string(), cert)
        desc = f"certificate serial 0x{cert.serial_number:x} for {', '.join(node_ids)} issued by {issuer_name}"
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


def _ext(extensions: x509.Extensions, cls: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None
