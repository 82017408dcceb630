"""Opening the signed things of a move: a MoveOutGrant (by any tier: the CS that receives a 転出証明書情報,
and the prefecture and national servers that see it on a 転入 notice) and the CS-to-CS envelopes that
carry their signer's node certificate (転出証明書情報, 転入通知).

Each is verified end to end, whoever delivered it: the envelope carries the signer's certificate, which
must chain to the node CA, be valid and not revoked, and name the node the payload says signed it.
"""

from __future__ import annotations

import re
from typing import TypeVar

from google.protobuf.message import Message

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.moves import check_members
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.pki import PeerIdentity, TrustStore, open_signed
from jukinet.v1 import envelope_pb2, moves_pb2

M = TypeVar("M", bound=Message)
_GRANT_ID = re.compile(r"cs:([0-9]{6})/([1-9][0-9]{0,18})")
MAX_GRANT_ID_CHARS = 29  # "cs:" + 6 digits + "/" + at most 19 digits


def grant_id_problem(grant_id: str) -> str | None:
    """What is wrong with ``grant_id`` ("cs:131148/42": the issuing CS and its grant number), or None."""
    if len(grant_id) > MAX_GRANT_ID_CHARS or not _GRANT_ID.fullmatch(grant_id):
        return f"grant_id {quoted(grant_id)} is not <cs node id>/<number>, e.g. cs:131148/42"
    return None


def signed_by_node(envelope: envelope_pb2.Signed, kind: type[M], trust: TrustStore) -> tuple[M, PeerIdentity]:
    """Open ``envelope`` by the node certificate it carries (node CA, signing, valid, not revoked)."""
    if not envelope.certificate:
        raise Rejected(Problem.UNAUTHENTICATED, f"{kind.DESCRIPTOR.full_name} carries no signer certificate")
    signer = trust.identify(envelope.certificate, expect="node", purpose="signing")
    return open_signed(envelope, kind, signer.public_key), signer


def cs_named(text: str, what: str) -> NodeId:
    """``text`` as the node id of a CS (Rejected INVALID naming ``what`` otherwise)."""
    try:
        node = NodeId.parse(text)
    except Rejected as exc:
        raise Rejected(Problem.INVALID, f"{what}: {exc}") from None
    if node.kind is not NodeKind.CS:
        raise Rejected(Problem.INVALID, f"{what}: {node} is not a CS")
    return node


def open_grant(envelope: envelope_pb2.Signed, trust: TrustStore) -> tuple[moves_pb2.MoveOutGrant, NodeId, NodeId]:
    """Verify a Signed MoveOutGrant end to end; returns (grant, origin, destination).

    1. the envelope carries a node signing certificate, valid and not revoked, whose key signed it;
    2. the grant's origin is a CS the certificate names (only the owner grants a move out);
    3. its id is the origin's (``<origin>/<n>``), its destination another CS, its members 1..MAX_MOVE_MEMBERS
       distinct valid 住民票コード.
    """
    grant, signer = signed_by_node(envelope, moves_pb2.MoveOutGrant, trust)
    origin = cs_named(grant.origin, "grant origin")
    if not signer.names(origin):
        raise Rejected(Problem.DENIED, f"the grant names origin {origin} but was signed by {signer}")
    problem = grant_id_problem(grant.grant_id)
    if problem or not grant.grant_id.startswith(f"{origin}/"):
        raise Rejected(Problem.INVALID, problem or f"grant {quoted(grant.grant_id)} is not one of {origin}'s")
    destination = cs_named(grant.destination, "grant destination")
    if destination == origin:
        raise Rejected(Problem.INVALID, f"grant {grant.grant_id} moves residents from {origin} to itself")
    check_members(list(grant.resident_codes))
    return grant, origin, destination
