"""Typed clients for the systems that call JukiNet nodes: agency systems and operator terminals."""

from jukinet.clients.agency import AgencyClient, ProvidedRecord
from jukinet.clients.channels import open_channel
from jukinet.clients.terminal import TerminalClient

__all__ = ["AgencyClient", "ProvidedRecord", "TerminalClient", "open_channel"]
