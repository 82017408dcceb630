"""The legal tables a server provides under: those of the verified network directory it holds.

Loaded when the server starts (from the directory it cached) and again each time a newer version is
stored (:meth:`NodeDirectory.subscribe`), without a restart. A lookup takes the current
:class:`LegalTables` once, when it starts, and decides with it to the end: a new version in the middle
of a call changes nothing for that call. No directory yet, or an expired one, provides nothing
(UNAVAILABLE): tables are never guessed.
"""

from __future__ import annotations

import logging

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.directory import iso_ms
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import LegalTables
from jukinet.server.runtime.directory import NodeDirectory

log = logging.getLogger(__name__)


class DirectoryTables:
    """The current tables of a node's directory (safe from any thread: replaced whole)."""

    def __init__(self, directory: NodeDirectory, clock: Clock = SYSTEM_CLOCK) -> None:
        self._directory = directory
        self._clock = clock
        self._state: tuple[LegalTables, int] | None = None  # the tables and their directory's expiry, together
        directory.subscribe(self.reload)
        self.reload()

    def reload(self) -> None:
        """Take the tables of the directory held now (called after each new version is stored)."""
        current = self._directory.current
        if current is None:
            return
        directory = current.directory
        tables = LegalTables.from_directory(directory.message)  # checked already: the directory verified
        self._state = (tables, directory.expires_at_ms)
        log.info("legal tables of network directory version %d: %d rows", tables.version, len(tables.rows))

    def current(self) -> LegalTables:
        """The tables to decide one call with."""
        state = self._state
        if state is None:
            raise Rejected(Problem.UNAVAILABLE, "no network directory yet, so no legal tables: nothing is provided")
        tables, expires = state
        if self._clock.now_ms() >= expires:
            raise Rejected(
                Problem.UNAVAILABLE,
                f"the legal tables' network directory version {tables.version} expired at {iso_ms(expires)}; "
                "nothing is provided until a newer one arrives",
            )
        return tables
