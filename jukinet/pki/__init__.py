"""JukiNet development PKI, certificate trust policy and the signed envelope.

Root CA -> issuing CAs ``node`` (CS, prefecture, national servers), ``operator`` (operator terminals and
IC cards), ``agency`` (agency systems) and ``card`` (residents' My Number cards; not a TLS CA). EC P-256
keys, ECDSA-SHA256 signatures. Identities are ``urn:jukinet:<node-id>`` URIs in the
SubjectAlternativeName; node TLS certificates also carry the node's TLS name, which clients check. Dev
PKI only: CA keys are files here, in production they would be in an HSM. See :mod:`jukinet.pki.layout`
for the directory layout.
"""

from jukinet.pki.ca import (
    CARD_CERTIFICATE_DAYS,
    IssuedCertificate,
    find_issued,
    init_pki,
    issue_card_auth_certificate,
    issue_card_signature_certificate,
    issue_signing_certificate,
    issue_tls_certificate,
    revoke,
    revoke_all,
)
from jukinet.pki.envelope import Signer, open_certified, open_signed, seal, seal_payload
from jukinet.pki.keys import (
    SoftwareSigner,
    generate_key,
    key_id,
    load_private_key,
    sign_ecdsa_raw,
    verify_digest_raw,
    verify_ecdsa_raw,
)
from jukinet.pki.layout import ISSUER_KINDS, URN_PREFIX, IssuerKind, node_urn, parse_urn
from jukinet.pki.trust import ISSUER_FOR_KIND, PeerIdentity, TrustStore

__all__ = [
    "CARD_CERTIFICATE_DAYS",
    "ISSUER_FOR_KIND",
    "ISSUER_KINDS",
    "URN_PREFIX",
    "IssuedCertificate",
    "IssuerKind",
    "PeerIdentity",
    "Signer",
    "SoftwareSigner",
    "TrustStore",
    "find_issued",
    "generate_key",
    "init_pki",
    "issue_card_auth_certificate",
    "issue_card_signature_certificate",
    "issue_signing_certificate",
    "issue_tls_certificate",
    "key_id",
    "load_private_key",
    "node_urn",
    "open_certified",
    "open_signed",
    "parse_urn",
    "revoke",
    "revoke_all",
    "seal",
    "seal_payload",
    "sign_ecdsa_raw",
    "verify_digest_raw",
    "verify_ecdsa_raw",
]
