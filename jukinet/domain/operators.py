"""Operators: roles (data, not code), and what an operator's IC card signs to log in."""

from __future__ import annotations

import hashlib

# Each role grants a group of operator RPCs; a node checks the role carried by the session.
ROLES: dict[str, str] = {
    "register-residents": "record changes and register residents at a CS (異動届の受理)",
    "administer-operators": "enroll operators, unlock them, revoke their sessions",
    "manage-cards": "My Number card lifecycle (交付, 失効)",
    "answer-disclosure": "read the provision log to answer a resident's disclosure request",
}

MAX_CONSECUTIVE_FAILURES = 5
LOGIN_CONTEXT = b"jukinet-operator-login-v1"


def unknown_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    """The names in ``roles`` that are not roles."""
    return [r for r in roles if r not in ROLES]


def login_signing_input(node_id: str, challenge: bytes, terminal_certificate_sha256: bytes) -> bytes:
    """The bytes an operator's card signs: bound to the node, the fresh challenge and the terminal.

    Binding the terminal's certificate means a signature obtained at one terminal cannot be relayed
    from another, and binding the node means it cannot be replayed at a different node.
    """
    return b"\x00".join(
        (LOGIN_CONTEXT, node_id.encode(), hashlib.sha256(challenge).digest(), terminal_certificate_sha256)
    )
