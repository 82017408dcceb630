"""機関別符号: identifiers of residents specific to one agency, derived inside the national token.

``identifier = base32(HMAC-SHA256(K, "jukinet-agency-identifier-v1" 0x00 法人番号 0x00 住民票コード)[:20])``
(:func:`jukinet.domain.legal.agency_identifier_input`, ``agency_identifier_from_mac``), where ``K`` is the
national token's key ``agency-identifier`` (a generic secret: sensitive, never extractable, SIGN only,
like the My Number key, and a different key). So an identifier reveals nothing of the code, two agencies'
identifiers of one resident cannot be joined without the token, and the same (agency, resident) always
gives the same identifier.

Both directions are kept in LMDB (``agency_ids``, ``agency_id_codes``), so a repeat never touches the
token, and the codes a call has not seen yet go to the token worker in one job (a batch stream's chunk
costs one round trip). **住民票コード変更**: the identifier is derived from the resident's *first* code
(followed back through ``code_replaces``), so an agency keeps the identifier it has when the code
changes; resolving follows ``code_changes`` forward to the current code. Identifiers are made only for
codes the national server holds a record of, so the store grows with residents × pseudonymous agencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import lmdb

from jukinet.domain.codes import CorporateNumber
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import agency_identifier_from_mac, agency_identifier_input, agency_identifier_problem
from jukinet.domain.limits import AGENCY_IDENTIFIER_MACS_PER_JOB, MAX_CODE_CHANGES
from jukinet.domain.node_ids import NodeId
from jukinet.hsm.keys import AGENCY_IDENTIFIER_KEY_LABEL
from jukinet.storage import NodeStorage
from jukinet.storage.agency_identifiers import AgencyIdentifierStore

__all__ = ["AGENCY_IDENTIFIER_KEY_LABEL", "AgencyIdentifiers", "resolve_in"]


Macs = Callable[[Sequence[bytes]], list[bytes]]
Agency = NodeId | CorporateNumber | str


def _corporate(agency: Agency) -> str:
    if isinstance(agency, NodeId):
        return str(agency.corporate_number)
    return str(CorporateNumber.parse(str(agency)))


class AgencyIdentifiers:
    """Derives, keeps and resolves agency identifiers (plain object: the batch stream and the lookups call it)."""

    def __init__(self, storage: NodeStorage, macs: Macs) -> None:
        self._storage = storage
        self._store = AgencyIdentifierStore(storage.env)
        self._macs = macs

    def for_codes(self, agency: Agency, codes: Iterable[str]) -> dict[str, str]:
        """Each code's identifier for ``agency`` (codes without a record at this server are left out)."""
        corporate = _corporate(agency)
        found: dict[str, str] = {}
        missing: dict[str, str] = {}  # code -> its first code
        with self._storage.env.read() as txn:
            for code in dict.fromkeys(codes):
                known = self._store.identifier(txn, corporate, code)
                if known is not None:
                    found[code] = known
                elif self._storage.records.current(txn, code) is not None:
                    first = self._first(txn, code)
                    known = self._store.identifier(txn, corporate, first)
                    if known is not None:  # asked under the first code before: the same identifier
                        found[code] = known
                    missing[code] = first
        if not missing:
            return found
        firsts = sorted({f for c, f in missing.items() if c not in found})
        derived: dict[str, str] = {}
        for start in range(0, len(firsts), AGENCY_IDENTIFIER_MACS_PER_JOB):
            part = firsts[start : start + AGENCY_IDENTIFIER_MACS_PER_JOB]
            macs = self._macs([agency_identifier_input(corporate, f) for f in part])
            derived.update((f, agency_identifier_from_mac(m)) for f, m in zip(part, macs, strict=True))
        for code, first in missing.items():
            found.setdefault(code, derived.get(first, ""))

        def commit(txn: lmdb.Transaction) -> None:
            for code, first in missing.items():
                identifier = found[code]
                holder = self._store.code(txn, corporate, identifier)
                if holder is not None and holder != first:  # 2^-160 per pair: never, but never silently
                    raise Rejected(Problem.BROKEN, f"agency identifier collision for agency {corporate}")
                self._store.put(txn, corporate, code, identifier, first)
                if first != code:
                    self._store.put(txn, corporate, first, identifier, first)

        self._storage.env.submit(commit).result()
        return found

    def resolve(self, agency: Agency, identifier: str) -> str | None:
        """The current 住民票コード of the resident ``identifier`` names for ``agency``; None when it names
        nobody for this agency (another agency's identifier is indistinguishable from a made-up one).
        Rejected (INVALID) when it is not of the identifier's form."""
        problem = agency_identifier_problem(identifier)
        if problem:
            raise Rejected(Problem.INVALID, problem)
        with self._storage.env.read() as txn:
            return resolve_in(txn, self._storage, self._store, _corporate(agency), identifier)

    def _first(self, txn: lmdb.Transaction, code: str) -> str:
        for _ in range(MAX_CODE_CHANGES):
            older = self._storage.numbers.replaces(txn, code)
            if older is None:
                return code
            code = older
        raise Rejected(Problem.BROKEN, f"more than {MAX_CODE_CHANGES} 住民票コード changes before {code}")


def resolve_in(
    txn: lmdb.Transaction, storage: NodeStorage, store: AgencyIdentifierStore, corporate: str, identifier: str
) -> str | None:
    """:meth:`AgencyIdentifiers.resolve` of a well-formed identifier inside ``txn`` (``corporate``: the agency's
    法人番号); a batch chunk's reader resolves a thousand in one read transaction."""
    code = store.code(txn, corporate, identifier)
    if code is None:
        return None
    for _ in range(MAX_CODE_CHANGES):
        newer = storage.numbers.replaced_by(txn, code)
        if newer is None:
            return code
        code = newer
    raise Rejected(Problem.BROKEN, f"more than {MAX_CODE_CHANGES} 住民票コード changes from {code}")
