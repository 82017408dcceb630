"""Signed blocks of designated 住民票コード, as every tier checks them: the national server seals a CodeBlock
with its token (its node certificate attached); the CS that gets it, and the prefecture that learns the
designation from it, both open it with :func:`verify_block`. A block answering ChangeResidentCode holds one
code and names the code it replaces (``CodeBlock.replaces``)."""

from __future__ import annotations

from jukinet.domain.codes import is_valid_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import MAX_CODES_PER_BLOCK
from jukinet.pki import TrustStore, open_certified
from jukinet.v1 import envelope_pb2, numbers_pb2


def verify_block(signed: envelope_pb2.Signed, trust: TrustStore, cs: NodeId) -> numbers_pb2.CodeBlock:
    """A CodeBlock sealed by the national server for ``cs``, every code well formed; Rejected otherwise."""
    block, _ = open_certified(signed, numbers_pb2.CodeBlock, trust, NodeId.national())
    if block.cs != str(cs):
        raise Rejected(Problem.DENIED, f"code block #{block.block} is designated to {block.cs}, not {cs}")
    if not 0 < len(block.codes) <= MAX_CODES_PER_BLOCK or not all(is_valid_resident_code(c) for c in block.codes):
        raise Rejected(Problem.INVALID, f"code block #{block.block} holds malformed codes")
    if block.replaces and (len(block.codes) != 1 or not is_valid_resident_code(block.replaces)):
        raise Rejected(Problem.INVALID, f"code block #{block.block} of a 住民票コード変更 must hold one code")
    return block
