"""Provision at a prefecture server (別表第5: to the prefecture's own bodies; 別表第6: its own use).

The same lookups as the national server's (:mod:`jukinet.server.provision`), under the rows of
the directory's 別表第5 and 別表第6 that name a prefecture this server hosts, from the records it holds
for their municipalities: a row of 東京都 reaches residents whose record (its address's municipality) is
in 東京都 and no one else, even at a consolidated centre that also holds another prefecture's records
(a resident outside the row's prefecture is NOT_FOUND, as one it does not hold). An agency with a row
of another prefecture only is refused (PERMISSION_DENIED). Prefecture tables name residents by
住民票コード (agency identifiers are the national token's), so ``LookupByAgencyIdentifier`` is refused
here for every row.
"""

from __future__ import annotations

from collections.abc import Sequence

from jukinet.domain.legal import PREFECTURE_TABLES, LegalTables, TableRow
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.server.legal_tables import DirectoryTables
from jukinet.server.parts import NodeParts
from jukinet.server.provision import Provision, ProvisionRpc, Scope
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.v1 import identity_pb2


class PrefectureScope(Scope):
    """The rows of the prefectures this server hosts; each reaches its own prefecture's records."""

    tables = "/".join(sorted(PREFECTURE_TABLES))

    def __init__(self, prefectures: Sequence[NodeId]) -> None:
        self._prefectures = tuple(p for p in prefectures if p.kind is NodeKind.PREFECTURE)

    def rows(self, tables: LegalTables, agency: NodeId, business: str) -> list[TableRow]:
        return tables.prefectural(self._prefectures, agency.corporate_number, business)

    def row_for(self, rows: Sequence[TableRow], record: identity_pb2.IdentityRecord) -> TableRow | None:
        prefecture = record.address.municipality_code[:2]
        return next((r for r in rows if r.prefecture is not None and r.prefecture.prefecture_code == prefecture), None)


def provision_service(parts: NodeParts) -> ServiceBinding:
    """The prefecture tier's agency service (see jukinet.server.assembly.TIERS)."""
    tables = DirectoryTables(parts.directory, parts.clock)
    provision = Provision(
        parts.storage, tables.current, parts.auditor, parts.clock, PrefectureScope(parts.config.node_ids)
    )
    return bind(ProvisionRpc(provision, parts.auditor, parts.blocking))
