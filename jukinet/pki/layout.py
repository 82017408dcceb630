"""On-disk layout of the development PKI, identity URNs and small file helpers.

Layout of a PKI directory (created by :func:`jukinet.pki.init_pki`)::

    pki_dir/
      root-ca.pem                 root CA certificate (written last: its presence means "initialised")
      node-ca.pem                 issuing CA for CS, prefecture and national servers
      operator-ca.pem             issuing CA for operator terminals (later: operator IC cards)
      agency-ca.pem               issuing CA for agency systems
      card-ca.pem                 issuing CA for residents' My Number cards ("JukiNet Card CA", JPKI's role)
      trust-bundle.pem            root + the TLS issuing CAs (node, operator, agency): gRPC root_certificates;
                                  the card CA is not in it, so a card certificate never passes a TLS handshake
      private/                    (0700) CA private keys, PEM PKCS#8, mode 0600
        root-ca.key  node-ca.key  operator-ca.key  agency-ca.key  card-ca.key
      crl/<kind>.crl.pem          CRL of each issuing CA (empty at first)
      issued/<kind>.jsonl         append-only index of issued certificates (serial, node ids, purpose)
      .lock                       flock(2) file serialising writers

Only the public part (``*.pem`` and ``crl/``) is needed to build a :class:`~jukinet.pki.TrustStore`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import URN_PREFIX, NodeId

IssuerKind = Literal["node", "operator", "agency", "card"]
ISSUER_KINDS: tuple[IssuerKind, ...] = get_args(IssuerKind)
TLS_ISSUER_KINDS: tuple[IssuerKind, ...] = ("node", "operator", "agency")
"""Issuing CAs whose certificates may appear in a TLS handshake (the trust bundle); cards never do."""


def root_cert_path(pki_dir: Path) -> Path:
    """Path of the root CA certificate."""
    return pki_dir / "root-ca.pem"


def ca_cert_path(pki_dir: Path, kind: IssuerKind) -> Path:
    """Path of an issuing CA certificate."""
    return pki_dir / f"{kind}-ca.pem"


def ca_key_path(pki_dir: Path, kind: IssuerKind | Literal["root"]) -> Path:
    """Path of a CA private key (dev PKI only: production CA keys live in an HSM)."""
    return pki_dir / "private" / f"{kind}-ca.key"


def crl_path(pki_dir: Path, kind: IssuerKind) -> Path:
    """Path of an issuing CA's CRL."""
    return pki_dir / "crl" / f"{kind}.crl.pem"


def bundle_path(pki_dir: Path) -> Path:
    """Path of the trust bundle (root + issuing CAs)."""
    return pki_dir / "trust-bundle.pem"


def index_path(pki_dir: Path, kind: IssuerKind) -> Path:
    """Path of the issued-certificate index of one issuing CA."""
    return pki_dir / "issued" / f"{kind}.jsonl"


def check_kind(kind: str) -> IssuerKind:
    """Return ``kind`` if it is an issuer kind, else raise Rejected (INVALID)."""
    if kind not in ISSUER_KINDS:
        raise Rejected(Problem.INVALID, f"unknown issuer kind {kind!r} (expected one of {', '.join(ISSUER_KINDS)})")
    return kind  # type: ignore[return-value]


def node_urn(node_id: str) -> str:
    """``cs:131148`` -> ``urn:jukinet:cs:131148``; Rejected (INVALID) for anything that is not a node id."""
    return NodeId.parse(node_id).urn


def parse_urn(uri: str) -> str | None:
    """``urn:jukinet:pref:13`` -> ``pref:13``; None for any other URI."""
    if uri[: len(URN_PREFIX)].lower() != URN_PREFIX or len(uri) == len(URN_PREFIX):
        return None
    return uri[len(URN_PREFIX) :]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (readers never see a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(pki_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``pki_dir`` (serialises init, issuance and revocation across processes)."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    with open(pki_dir / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
