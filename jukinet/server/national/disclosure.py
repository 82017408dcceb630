"""開示 at the national server: the provision log, disclosed to residents (through a portal, with their card)
and, at a CS's counter, for the CS's operator (see :mod:`jukinet.server.disclosure`).

A CS may ask only for a resident it keeps the record of now or kept before (one of its own notices is
in the resident's history here); it names the operator at its counter, an operator of its own site, and
both are in the audit entry. A resident's entries under the codes a 住民票コード変更 replaced are listed
too (``code_replaces``, at most ``MAX_CODE_CHANGES`` back).
"""

from __future__ import annotations

from collections.abc import Callable

import lmdb
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.limits import MAX_CODE_CHANGES
from jukinet.domain.node_ids import NodeKind
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.server.disclosure import Disclosure, DisclosureRpc, Entries, Policies, operator_named
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import AnyOf, Kinds, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import MerkleLog, NodeStorage, ProvisionLog
from jukinet.v1 import disclosure_pb2


class ProvisionsDisclosed:
    """The provision log as a :class:`jukinet.server.disclosure.DisclosedLog`: the resident index (written
    behind the log, exact at any moment) gives the ids, the leaves are read back exactly as hashed."""

    def __init__(self, provisions: ProvisionLog) -> None:
        self._provisions = provisions

    @property
    def log(self) -> MerkleLog:
        return self._provisions.log

    def of_resident(self, resident_code: str, after_id: int, limit: int) -> Entries:
        found, more = self._provisions.leaves_of_resident(resident_code, after_id, limit)
        return [(index, raw) for index, raw, _ in found], more


def former_codes(storage: NodeStorage) -> Callable[[str], list[str]]:
    """The codes a resident held before, newest first (住民票コード変更: new → old in ``code_replaces``)."""

    def former(code: str) -> list[str]:
        out: list[str] = []
        with storage.env.read() as txn:
            current = code
            while len(out) < MAX_CODE_CHANGES:
                older = storage.numbers.replaces(txn, current)
                if older is None or older in out or older == code:
                    break
                out.append(older)
                current = older
        return out

    return former


def kept_by(storage: NodeStorage, caller: Caller) -> Callable[[lmdb.Transaction, str], bool]:
    """Does the calling CS keep the resident's record now, or did it before (its notice is in the history)?"""
    cs = caller.of_kind(NodeKind.CS)[0]

    def allowed(txn: lmdb.Transaction, code: str) -> bool:
        record = storage.records.current(txn, code)
        if record is not None and record.address.municipality_code == cs.code:
            return True
        return storage.history.has_origin(txn, code, str(cs))

    return allowed


def disclosure_service(parts: NodeParts) -> ServiceBinding:
    """DisclosureService over the provision log (see jukinet.server.assembly.TIERS)."""
    storage = parts.storage
    disclosure = Disclosure(
        parts.config.node_id,
        storage,
        ProvisionsDisclosed(storage.provisions),
        parts.auditor,
        parts.certificate.public_bytes(Encoding.DER),
        CardPresenceVerifier(parts.trust, parts.clock),
        parts.clock,
        former_codes(storage),
    )
    terminals = TerminalOf.of_nodes(parts.config.node_ids)
    portals = Kinds.of(NodeKind.PORTAL)

    def counter(request: disclosure_pb2.ListForResidentRequest, caller: Caller) -> disclosure_pb2.DisclosureAnswer:
        cs = caller.of_kind(NodeKind.CS)[0]
        return disclosure.for_resident(request, caller, operator_named(request, cs), kept_by(storage, caller))

    policies = Policies(
        tree_head=AnyOf((portals, terminals, Kinds.of(NodeKind.CS))), mine=portals, for_resident=Kinds.of(NodeKind.CS)
    )
    return bind(DisclosureRpc(disclosure, policies, parts.auditor, parts.blocking, counter))
