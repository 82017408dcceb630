"""``jukinet outbox quarantine list|retry|drop``: outbox items a destination refused for good.

Uses the operator session ``jukinet operator login`` left at the node's site terminal (the operator
needs the role 'manage-links'); retry and drop are audited at the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jukinet.cli.operators import session_terminal
from jukinet.clients.terminal import TerminalClient
from jukinet.devnet.provision import load_network


def _terminal(state: Path, node: str) -> TerminalClient:
    return session_terminal(load_network(state), node)


def quarantine_list(state: Path, node: str, destination: str) -> int:
    items = _terminal(state, node).quarantine(destination)
    if not items:
        print(f"nothing in quarantine at {node}" + (f" for {destination}" if destination else ""))
        return 0
    for item in items:
        at = item.quarantined_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{item.destination} #{item.position}  {item.kind}  {item.summary}  ({item.size} bytes, {at})")
        print(f"    refused ({item.problem}): {item.reason}")
    print(f"{len(items)} item(s)")
    return 0


def quarantine_retry(state: Path, node: str, destination: str, positions: Sequence[int]) -> int:
    reply = _terminal(state, node).retry_quarantined(destination, positions)
    print(f"{reply.items} item(s) back in the queue for {destination} from #{reply.first_position}")
    return 0


def quarantine_drop(state: Path, node: str, destination: str, positions: Sequence[int]) -> int:
    reply = _terminal(state, node).drop_quarantined(destination, positions)
    print(f"{reply.items} item(s) for {destination} given up (the audit log keeps their digests)")
    return 0
