"""Operators: their roles, what an operator's IC card signs to log in, and the lockout rule."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted
from jukinet.v1 import node_state_pb2, operator_pb2

__all__ = [
    "LOGIN_CONTEXT",
    "MAX_CONSECUTIVE_FAILURES",
    "Role",
    "count_failure",
    "login_signing_input",
    "parse_roles",
    "reset_failures",
    "revoke_all_sessions",
    "unlock",
]


class Role(StrEnum):
    """Each role grants a group of operator RPCs; a node checks the roles its session carries."""

    REGISTER_RESIDENTS = "register-residents"
    ADMINISTER_OPERATORS = "administer-operators"
    MANAGE_CARDS = "manage-cards"
    ANSWER_DISCLOSURE = "answer-disclosure"
    MANAGE_LINKS = "manage-links"
    ISSUE_COPIES = "issue-copies"
    MANAGE_DV_MEASURES = "manage-dv-measures"
    DISCLOSE_PROVISIONS = "disclose-provisions"
    READ_STATISTICS = "read-statistics"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Role.REGISTER_RESIDENTS: "record changes and register residents at a CS (異動届の受理)",
    Role.ADMINISTER_OPERATORS: "enroll operators, unlock them, revoke their sessions",
    Role.MANAGE_CARDS: "My Number card lifecycle (交付, 失効)",
    Role.ANSWER_DISCLOSURE: "read the provision log to answer a resident's disclosure request",
    Role.MANAGE_LINKS: "list, retry and drop outbox items a destination refused (the quarantine)",
    Role.ISSUE_COPIES: "ask a resident's home CS for a copy of their record at the counter (広域交付)",
    Role.MANAGE_DV_MEASURES: "register, list and remove DV support measures (DV等支援措置) of this CS's residents",
    Role.DISCLOSE_PROVISIONS: "開示 at the counter: show one resident their provisions and copy issuances, with proofs",
    Role.READ_STATISTICS: "read the monthly population movement report (national server)",
}

MAX_CONSECUTIVE_FAILURES = 5
LOGIN_CONTEXT = b"jukinet-operator-login-v1"


def parse_roles(names: Iterable[str]) -> tuple[Role, ...]:
    """Roles from their names; Rejected (INVALID) naming the unknown ones (a typo must not pass silently)."""
    names = list(names)
    unknown = [n for n in names if n not in Role._value2member_map_]
    if unknown:
        known = ", ".join(r.value for r in Role)
        shown = ", ".join(quoted(n, 32) for n in unknown[:8])
        raise Rejected(Problem.INVALID, f"unknown roles {shown} (known: {known})")
    return tuple(dict.fromkeys(Role(n) for n in names))


def login_signing_input(node_id: str, challenge: bytes, terminal_certificate_sha256: bytes) -> bytes:
    """The bytes an operator's card signs: bound to the node, the fresh challenge and the terminal.

    Binding the terminal's certificate means a signature obtained at one terminal cannot be relayed
    from another, and binding the node means it cannot be replayed at a different node.
    """
    return b"\x00".join(
        (LOGIN_CONTEXT, node_id.encode(), hashlib.sha256(challenge).digest(), terminal_certificate_sha256)
    )


# -- what happens to an operator record (node_state OperatorRecord) ------------------------------------


def count_failure(record: node_state_pb2.OperatorRecord, now_ms: int) -> None:
    """One more consecutive failure; the fifth locks the operator and ends their sessions."""
    record.info.consecutive_failures += 1
    if record.info.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
        record.info.status = operator_pb2.OPERATOR_STATUS_LOCKED
        record.sessions_valid_after_ms = now_ms


def reset_failures(record: node_state_pb2.OperatorRecord) -> None:
    record.info.consecutive_failures = 0


def unlock(record: node_state_pb2.OperatorRecord) -> None:
    record.info.consecutive_failures = 0
    record.info.status = operator_pb2.OPERATOR_STATUS_ACTIVE


def revoke_all_sessions(record: node_state_pb2.OperatorRecord, now_ms: int) -> None:
    record.sessions_valid_after_ms = now_ms
