"""The national tier's agency service: lookups under 別表第1 of the network directory, with agency
identifiers (機関別符号) derived in the national token (:mod:`jukinet.server.provision`,
:mod:`jukinet.server.national.agency_identifiers`), and the four-item search
(:mod:`jukinet.server.national.search`), which only the national server answers."""

from __future__ import annotations

from jukinet.domain.kana import fold_version
from jukinet.domain.node_ids import NodeKind
from jukinet.hsm.keys import AGENCY_IDENTIFIER_KEY_LABEL
from jukinet.server.audit import Auditor
from jukinet.server.legal_tables import DirectoryTables
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.national.search import FourItemsSearch, IndexBuilder, answer_message
from jukinet.server.parts import NodeParts
from jukinet.server.provision import Provision, ProvisionRpc, Scope
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage.search_index import FourItemsIndex
from jukinet.v1 import audit_pb2, provision_pb2, provision_pb2_grpc


class FourItemSearchRpc(provision_pb2_grpc.FourItemSearchServiceServicer):
    """The four-item search: agencies only, under their 別表第1 row (checked first, in the search)."""

    def __init__(self, search: FourItemsSearch, auditor: Auditor, blocking: Blocking) -> None:
        self._search = search
        self.auditor = auditor
        self.blocking = blocking
        self.agencies = Kinds.of(NodeKind.AGENCY)

    @guarded("agencies", audit=audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY)
    def SearchByFourItems(
        self, request: provision_pb2.SearchByFourItemsRequest, caller: Caller
    ) -> provision_pb2.SearchByFourItemsResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        r = request
        answer = self._search.search(
            agency, r.business_code, r.name, r.kana, r.birth_date if r.HasField("birth_date") else None, r.sex,
            r.municipality_code, r.address_text,
        )  # fmt: skip
        return answer_message(answer)


def agency_identifiers(parts: NodeParts) -> AgencyIdentifiers:
    """The national server's agency identifiers, derived with its token's ``agency-identifier`` key."""
    from jukinet.hsm import TokenMac

    pin = parts.config.token_pin_file.read_text(encoding="utf-8").strip()
    mac = TokenMac(parts.signer.worker, parts.config.token_label, pin, AGENCY_IDENTIFIER_KEY_LABEL)
    return AgencyIdentifiers(parts.storage, mac.macs)


def _national_provision(parts: NodeParts) -> tuple[Provision, AgencyIdentifiers]:
    identifiers = agency_identifiers(parts)
    tables = DirectoryTables(parts.directory, parts.clock)
    return Provision(parts.storage, tables.current, parts.auditor, parts.clock, Scope(), identifiers), identifiers


def provision_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's agency service (see jukinet.server.assembly.TIERS): 別表第1 of the directory."""
    provision, _ = _national_provision(parts)
    return bind(ProvisionRpc(provision, parts.auditor, parts.blocking))


def search_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's four-item search (see jukinet.server.assembly.TIERS)."""
    provision, identifiers = _national_provision(parts)
    index = FourItemsIndex(parts.storage.env, fold_version())
    IndexBuilder(parts.storage, index).start()  # records stored before the index existed (a daemon thread)
    search = FourItemsSearch(parts.storage, index, provision, parts.auditor, parts.clock, identifiers)
    return bind(FourItemSearchRpc(search, parts.auditor, parts.blocking))
