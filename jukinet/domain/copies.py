"""住民票の写しの広域交付: the rules of a copy, with no I/O.

A request travels as the exact bytes the terminal encoded (``CopyRequest``); the resident's card signs
over them and the copy names their SHA-256 (:func:`request_digest`), so neither a card presentation nor a
copy can be moved to another request. What a copy holds is decided here, in one place
(:func:`certified_copy`): the identity items, 世帯主 and 続柄; never 本籍 or 筆頭者 (the message has no
field for them); 住民票コード and 個人番号 only when expressly requested. The requesting CS checks the
content of what it got back with :func:`copy_problem` after the signature. A DV support measure refuses
copies (:func:`refusing_measure`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from google.protobuf.message import DecodeError

from jukinet.domain.codes import resident_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_CERTIFIED_COPY_BYTES, MAX_COPY_REQUEST_BYTES
from jukinet.domain.municipalities import directory
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.v1 import copies_pb2, identity_pb2, local_pb2

__all__ = [
    "CARD_PURPOSE",
    "MAX_DV_MEASURES_PER_RESIDENT",
    "MAX_DV_MUNICIPALITIES",
    "MAX_NONCE_BYTES",
    "MIN_NONCE_BYTES",
    "REQUEST_FRESH_MS",
    "certified_copy",
    "check_fresh",
    "copy_problem",
    "dv_measure",
    "dv_measures_problems",
    "parse_request",
    "refusing_measure",
    "request_digest",
]

CARD_PURPOSE = "wide-area-copy"
"""The purpose a resident's card signs a copy request for (a presentation for a move-in is not one)."""
REQUEST_FRESH_MS = 120_000
"""A request older (or further in the future) than this is refused: the card's presentation is as fresh."""
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
MAX_DV_MEASURES_PER_RESIDENT = 16
MAX_DV_MUNICIPALITIES = 64


def request_digest(request: bytes) -> bytes:
    """SHA-256 of a request's exact bytes: what a copy names as the request it answers."""
    return hashlib.sha256(request).digest()


def parse_request(raw: bytes) -> copies_pb2.CopyRequest:
    """A well-formed request (Rejected INVALID naming the field otherwise): two different CS nodes, a
    住民票コード or none (the card's holder), a nonce of 16 to 64 bytes and a time."""
    if len(raw) > MAX_COPY_REQUEST_BYTES:
        raise Rejected(Problem.INVALID, f"request: {len(raw)} bytes; at most {MAX_COPY_REQUEST_BYTES}")
    if not raw:
        raise Rejected(Problem.INVALID, "request: empty; a serialized CopyRequest is needed")
    try:
        request = copies_pb2.CopyRequest.FromString(raw)
    except DecodeError as exc:
        raise Rejected(Problem.INVALID, f"request: not a CopyRequest: {exc}") from None
    requesting = _cs("requesting_cs", request.requesting_cs)
    home = _cs("home_cs", request.home_cs)
    if requesting == home:
        raise Rejected(Problem.INVALID, f"home_cs: {home} is the requesting CS; 広域交付 is between two CS nodes")
    if request.resident_code:
        problem = resident_code_problem(request.resident_code)
        if problem is not None:
            raise Rejected(Problem.INVALID, f"resident_code: {problem}")
    if not MIN_NONCE_BYTES <= len(request.nonce) <= MAX_NONCE_BYTES:
        raise Rejected(
            Problem.INVALID, f"nonce: {len(request.nonce)} bytes; {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} needed"
        )
    if not request.HasField("requested_at"):
        raise Rejected(Problem.INVALID, "requested_at: missing")
    return request


def _cs(field: str, text: str) -> NodeId:
    try:
        node = NodeId.parse(text)
    except Rejected as exc:
        raise Rejected(Problem.INVALID, f"{field}: {exc}") from None
    if node.kind is not NodeKind.CS:
        raise Rejected(Problem.INVALID, f"{field}: {node} is not a CS")
    return node


def check_fresh(request: copies_pb2.CopyRequest, now_ms: int) -> None:
    """Rejected (INVALID) unless the request was made within REQUEST_FRESH_MS of ``now_ms``."""
    age = now_ms - request.requested_at.ToMilliseconds()
    if abs(age) > REQUEST_FRESH_MS:
        when = "old" if age > 0 else "in the future"
        raise Rejected(
            Problem.INVALID,
            f"requested_at: the request is {abs(age) / 1000:.0f} s {when}; at most {REQUEST_FRESH_MS // 1000} s",
        )


def certified_copy(
    record: identity_pb2.IdentityRecord,
    local: local_pb2.LocalResidentData | None,
    request: copies_pb2.CopyRequest,
    request_sha256: bytes,
    serial: int,
    issued_at_ms: int,
) -> copies_pb2.CertifiedCopy:
    """The copy of ``record`` answering ``request`` (the one place that decides what a copy holds)."""
    copy = copies_pb2.CertifiedCopy(
        serial=serial,
        issuer=request.home_cs,
        requesting_cs=request.requesting_cs,
        request_sha256=request_sha256,
        name=record.name,
        birth_date=record.birth_date,
        sex=record.sex,
        address=record.address,
        change_reason=record.change_reason,
        change_date=record.change_date,
    )
    copy.issued_at.FromMilliseconds(issued_at_ms)
    if local is not None:  # 世帯主 and 続柄 only: 本籍 and 筆頭者 have no place in a copy
        copy.head_of_household = local.head_of_household
        copy.relationship = local.relationship
    if request.include_resident_code:
        copy.resident_code = record.resident_code
    if request.include_my_number:
        copy.my_number = record.my_number
    return copy


def copy_problem(
    copy: copies_pb2.CertifiedCopy, request: copies_pb2.CopyRequest, request_sha256: bytes, payload_size: int
) -> str | None:
    """What is wrong with a copy (its signature already verified) as the answer to ``request``, or None:
    it must answer exactly this request, come from the home CS, hold a record of the home CS's
    municipality, and hold 住民票コード or 個人番号 only when they were expressly requested."""
    if payload_size > MAX_CERTIFIED_COPY_BYTES:
        return f"the copy is {payload_size} bytes; at most {MAX_CERTIFIED_COPY_BYTES}"
    if copy.request_sha256 != request_sha256:
        return "it answers another request (its request digest differs)"
    if copy.issuer != request.home_cs:
        return f"its issuer is {quoted(copy.issuer)}, not {request.home_cs}"
    if copy.requesting_cs != request.requesting_cs:
        return f"it was issued to {quoted(copy.requesting_cs)}, not {request.requesting_cs}"
    home_code = NodeId.parse(request.home_cs).code
    if copy.address.municipality_code != home_code:
        return f"its record is of municipality {quoted(copy.address.municipality_code)}, not the home CS's {home_code}"
    if copy.resident_code and not request.include_resident_code:
        return "it holds the 住民票コード, which was not requested"
    if copy.my_number and not request.include_my_number:
        return "it holds the 個人番号, which was not requested"
    if request.resident_code and copy.resident_code and copy.resident_code != request.resident_code:
        return "it is the record of another resident"
    if not copy.serial or not copy.name.kanji:
        return "it has no serial or no name"
    return None


# -- DV support measures (DV等支援措置) ------------------------------------------------------------------


def dv_measure(resident_code: str, scope: int, municipalities: Sequence[str]) -> tuple[int, tuple[str, ...]]:
    """A measure's (scope, municipalities), checked: ALL_REQUESTS takes no municipality; MUNICIPALITIES
    takes 1 to MAX_DV_MUNICIPALITIES codes of municipalities that hold residents (each once)."""
    problem = resident_code_problem(resident_code)
    if problem is not None:
        raise Rejected(Problem.INVALID, f"resident_code: {problem}")
    if scope == copies_pb2.DV_SCOPE_ALL_REQUESTS:
        if municipalities:
            raise Rejected(Problem.INVALID, "municipalities: a measure for all requests names no municipality")
        return scope, ()
    if scope != copies_pb2.DV_SCOPE_MUNICIPALITIES:
        raise Rejected(Problem.INVALID, f"scope: {scope} is not a DV scope (ALL_REQUESTS or MUNICIPALITIES)")
    if not 1 <= len(municipalities) <= MAX_DV_MUNICIPALITIES:
        raise Rejected(
            Problem.INVALID, f"municipalities: {len(municipalities)} given; 1 to {MAX_DV_MUNICIPALITIES} needed"
        )
    codes = tuple(dict.fromkeys(municipalities))
    for code in codes:
        m = directory().get(code)
        if m is None or not m.holds_residents:
            raise Rejected(Problem.INVALID, f"municipalities: {quoted(code)} is not a municipality with residents")
    return scope, codes


def dv_measures_problems(resident_code: str, measures: Sequence[copies_pb2.DvMeasure]) -> list[str]:
    """What is wrong with DV support measures a 転出証明書情報 carries for ``resident_code``: at most
    MAX_DV_MEASURES_PER_RESIDENT, each the member's, each a valid measure, registered_by short text."""
    if len(measures) > MAX_DV_MEASURES_PER_RESIDENT:
        return [f"dv_measures: {len(measures)}; at most {MAX_DV_MEASURES_PER_RESIDENT}"]
    problems: list[str] = []
    for measure in measures:
        if measure.resident_code != resident_code:
            problems.append(f"dv_measures: measure #{measure.measure_id} protects another resident")
            continue
        try:
            dv_measure(resident_code, measure.scope, measure.municipalities)
        except Rejected as exc:
            problems.append(f"dv_measures: measure #{measure.measure_id}: {exc}")
        if len(measure.registered_by) > 64 or not measure.registered_by.isprintable():
            problems.append(f"dv_measures: measure #{measure.measure_id}: registered_by is not an operator id")
    return problems


def refusing_measure(measures: Iterable[copies_pb2.DvMeasure], requesting_cs: NodeId) -> copies_pb2.DvMeasure | None:
    """The first measure that refuses a copy to ``requesting_cs``, or None."""
    for measure in measures:
        if measure.scope == copies_pb2.DV_SCOPE_ALL_REQUESTS:
            return measure
        if measure.scope == copies_pb2.DV_SCOPE_MUNICIPALITIES and requesting_cs.code in measure.municipalities:
            return measure
        if measure.scope not in (copies_pb2.DV_SCOPE_ALL_REQUESTS, copies_pb2.DV_SCOPE_MUNICIPALITIES):
            return measure  # a scope this code does not know: refuse rather than guess (fail closed)
    return None
