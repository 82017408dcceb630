"""The national tier's agency service: lookups under 別表第1 of the network directory, with agency
identifiers (機関別符号) derived in the national token (:mod:`jukinet.server.provision`,
:mod:`jukinet.server.national.agency_identifiers`)."""

from __future__ import annotations

from jukinet.hsm.keys import AGENCY_IDENTIFIER_KEY_LABEL
from jukinet.server.legal_tables import DirectoryTables
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.parts import NodeParts
from jukinet.server.provision import Provision, ProvisionRpc, Scope
from jukinet.server.runtime.server import ServiceBinding, bind


def agency_identifiers(parts: NodeParts) -> AgencyIdentifiers:
    """The national server's agency identifiers, derived with its token's ``agency-identifier`` key."""
    from jukinet.hsm import TokenMac

    pin = parts.config.token_pin_file.read_text(encoding="utf-8").strip()
    mac = TokenMac(parts.signer.worker, parts.config.token_label, pin, AGENCY_IDENTIFIER_KEY_LABEL)
    return AgencyIdentifiers(parts.storage, mac.macs)


def provision_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's agency service (see jukinet.server.assembly.TIERS): 別表第1 of the directory."""
    tables = DirectoryTables(parts.directory, parts.clock)
    provision = Provision(parts.storage, tables.current, parts.auditor, parts.clock, Scope(), agency_identifiers(parts))
    return bind(ProvisionRpc(provision, parts.auditor, parts.blocking))
