"""開示 (disclosure) with proofs: what a resident's request says, and the names both ends agree on. No I/O.

A resident asks with a ``DisclosureQuery`` whose exact bytes their card signs (purpose
:data:`CARD_PURPOSE`, the node asked, SHA-256 of the bytes); an operator at the counter names the resident
by 住民票コード. The served logs are the national server's provision log (:data:`PROVISION_LOG`) and a
CS's copy-issuance log (:data:`COPY_ISSUANCE_LOG`); an entry's id is its leaf index + 1 (provision id,
copy serial), and a page asks for the entries with ids above ``after_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError

from jukinet.domain.codes import resident_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import DEFAULT_DISCLOSURE_PAGE, MAX_DISCLOSURE_PAGE, MAX_DISCLOSURE_QUERY_BYTES
from jukinet.domain.quoting import quoted
from jukinet.v1 import disclosure_pb2

__all__ = ["CARD_PURPOSE", "COPY_ISSUANCE_LOG", "PROVISION_LOG", "Page", "page_of", "parse_query", "resident_code"]

CARD_PURPOSE: Final = "disclosure"
PROVISION_LOG: Final = "provision"
COPY_ISSUANCE_LOG: Final = "copy-issuance"
_LAST_ID = 2**64 - 1


@dataclass(frozen=True)
class Page:
    after_id: int
    limit: int
    known_tree_size: int


def page_of(after_id: int, limit: int, known_tree_size: int) -> Page:
    """A page request, bounded: ``limit`` 0 means :data:`DEFAULT_DISCLOSURE_PAGE`; above
    :data:`MAX_DISCLOSURE_PAGE` is refused (INVALID)."""
    if limit > MAX_DISCLOSURE_PAGE:
        raise Rejected(Problem.INVALID, f"limit: {limit} is over {MAX_DISCLOSURE_PAGE} entries a page")
    if after_id >= _LAST_ID:
        raise Rejected(Problem.INVALID, f"after_id: nothing comes after {after_id}")
    return Page(after_id, limit or DEFAULT_DISCLOSURE_PAGE, known_tree_size)


def parse_query(raw: bytes, node_id: str) -> tuple[disclosure_pb2.DisclosureQuery, Page]:
    """A resident's query, if it is well formed and asks this node; Rejected (INVALID) otherwise."""
    if len(raw) > MAX_DISCLOSURE_QUERY_BYTES:
        raise Rejected(Problem.INVALID, f"query: {len(raw)} bytes; at most {MAX_DISCLOSURE_QUERY_BYTES}")
    try:
        query = disclosure_pb2.DisclosureQuery.FromString(raw)
    except DecodeError:
        raise Rejected(Problem.INVALID, "query: not a DisclosureQuery") from None
    if query.node_id != node_id:
        raise Rejected(Problem.INVALID, f"query: it asks {quoted(query.node_id)}; this is {node_id}")
    return query, page_of(query.after_id, query.limit, query.known_tree_size)


def resident_code(text: str) -> str:
    """``text`` if it is a well-formed 住民票コード; Rejected (INVALID) otherwise."""
    problem = resident_code_problem(text)
    if problem is not None:
        raise Rejected(Problem.INVALID, f"resident_code: {problem}")
    return text
