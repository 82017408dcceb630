"""JukiNet development PKI and certificate trust policy.

Root CA -> issuing CAs ``node`` (CS, prefecture, national servers), ``operator`` (operator terminals and
IC cards) and ``agency`` (agency systems). EC P-256 keys, ECDSA-SHA256 signatures. Identities are
``urn:jukinet:<node-id>`` URIs in the SubjectAlternativeName. Dev PKI only: CA keys are files here, in
production they would be in an HSM. See :mod:`jukinet.pki.layout` for the directory layout.
"""

from jukinet.pki.ca import (
    IssuedCertificate,
    find_issued,
    init_pki,
    issue_signing_certificate,
    issue_tls_certificate,
    revoke,
)
from jukinet.pki.keys import (
    InvalidSignatureError,
    generate_key,
    key_id,
    load_private_key,
    sign_ecdsa_raw,
    verify_ecdsa_raw,
)
from jukinet.pki.layout import ISSUER_KINDS, URN_PREFIX, IssuerKind, node_urn, parse_urn
from jukinet.pki.trust import PeerIdentity, TrustStore, UntrustedCertificate

__all__ = [
    "ISSUER_KINDS",
    "URN_PREFIX",
    "InvalidSignatureError",
    "IssuedCertificate",
    "IssuerKind",
    "PeerIdentity",
    "TrustStore",
    "UntrustedCertificate",
    "find_issued",
    "generate_key",
    "init_pki",
    "issue_signing_certificate",
    "issue_tls_certificate",
    "key_id",
    "load_private_key",
    "node_urn",
    "parse_urn",
    "revoke",
    "sign_ecdsa_raw",
    "verify_ecdsa_raw",
]
