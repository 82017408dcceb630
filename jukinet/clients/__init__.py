"""Typed clients for the systems that call JukiNet nodes: agency systems and operator terminals.

They depend on the wire contract (and the pure domain types) only: importing them loads no storage,
token or server code.
"""

from jukinet.clients.agency import AgencyClient, BatchAnswer, BatchKind, BatchResult, ProvidedRecord
from jukinet.clients.cards import PresentableCard, present_card
from jukinet.clients.channels import open_channel
from jukinet.clients.terminal import Registration, TerminalClient

__all__ = [
    "AgencyClient",
    "BatchAnswer",
    "BatchKind",
    "BatchResult",
    "PresentableCard",
    "ProvidedRecord",
    "Registration",
    "TerminalClient",
    "open_channel",
    "present_card",
]
