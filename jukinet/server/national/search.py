"""Four-item search (４情報検索) at the national server: an agency names a person by 氏名 or reading, birth
date and sex (and optionally the address) and gets back every candidate, each with how it matched.

Order of work: the legal-table row for (agency, business) first (:meth:`Provision.row`, PERMISSION_DENIED
without one); an address in the query (municipality_code or address_text) only where the row permits
"address" (PERMISSION_DENIED otherwise: the filter would be an oracle for the address); the query's items
(INVALID_ARGUMENT); the index, which must be completely built
(UNAVAILABLE while a rebuild runs: an index half built would miss candidates); everyone the folded name
or folded reading, birth date and sex designate, each record judged item by item
(:func:`jukinet.domain.four_items.judge`), those whose address differs from a given one dropped (not
counted: nothing is said of people not provided); more than ``MAX_SEARCH_CANDIDATES`` refused
(FAILED_PRECONDITION, without saying how many, nothing logged); then every candidate is a provision: its
entry (query kind FOUR_ITEMS, the row's field groups, the search id as reference) and audit entry commit in ONE
transaction, durably, before the answer — redacted to the row's fields, how each item matched reported
only for the field groups the row permits — leaves.

The index (:class:`jukinet.storage.search_index.FourItemsIndex`) is kept by the national
:class:`jukinet.server.changes.ChangeWriter` in the transaction that stores each record; records stored
before it existed (or indexed with other folds) are indexed by :class:`IndexBuilder` when the node
starts, in the background, ``SEARCH_REBUILD_CHUNK`` records a transaction, resuming after a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.four_items import FourItems, Judgement, judge
from jukinet.domain.kana import TextMatch
from jukinet.domain.limits import MAX_SEARCH_CANDIDATES, MAX_SEARCH_MATCHES_READ, SEARCH_REBUILD_CHUNK
from jukinet.domain.node_ids import NodeId
from jukinet.domain.quoting import quoted
from jukinet.server.audit import Auditor
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.national.legal_table import TableRow
from jukinet.server.provision import log_provision
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.storage.search_index import FourItemsIndex
from jukinet.v1 import admin_pb2, identity_pb2, provision_pb2

log = logging.getLogger(__name__)


class RowOf(Protocol):
    """Where the search asks for the legal-table row (the national :class:`Provision`)."""

    def row(self, agency: NodeId, business: str) -> TableRow: ...


@dataclass(frozen=True)
class Candidate:
    record: identity_pb2.IdentityRecord  # redacted to the row's fields
    removed: bool
    how: Judgement  # reported: only the items of the field groups the row permits
    provision_id: int
    agency_identifier: str = ""  # where the row names residents by agency identifier (機関別符号)


@dataclass(frozen=True)
class SearchAnswer:
    search_id: str  # "" when nothing was provided
    candidates: tuple[Candidate, ...]


class FourItemsSearch:
    def __init__(
        self,
        storage: NodeStorage,
        index: FourItemsIndex,
        rows: RowOf,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        identifiers: AgencyIdentifiers | None = None,
    ) -> None:
        self._identifiers = identifiers
        self._storage = storage
        self._index = index
        self._rows = rows
        self._auditor = auditor
        self._clock = clock

    def search(
        self,
        agency: NodeId,
        business: str,
        name: str,
        kana: str,
        birth_date: identity_pb2.Date | None,
        sex: int,
        municipality: str = "",
        address_text: str = "",
    ) -> SearchAnswer:
        row = self._rows.row(agency, business)  # first: without a legal basis nothing else is looked at
        if (municipality or address_text) and not row.permits("address"):
            # the filter alone would answer "does this person live there?" (a candidate or none)
            raise Rejected(
                Problem.DENIED,
                f"{agency}'s row of the legal table for business {quoted(business)} does not permit the field "
                "group address: a four-item search under it cannot give municipality_code or address_text",
            )
        query = FourItems.parse(name, kana, birth_date, sex, municipality, address_text, today(self._clock))
        found = self._candidates(query)
        if len(found) > MAX_SEARCH_CANDIDATES:
            # FAILED_PRECONDITION (Problem.CONFLICT): the query is well formed, but against what is stored it
            # designates too many people; the agency must change it (add the address), not retry it as it
            # is — neither INVALID_ARGUMENT (nothing is wrong with it alone) nor RESOURCE_EXHAUSTED (which
            # says "later").
            narrow = (
                "narrow the address (municipality_code and address_text)"
                if query.has_address
                else "add the address (municipality_code, address_text)"
            )
            raise Rejected(
                Problem.CONFLICT,
                f"more than {MAX_SEARCH_CANDIDATES} people match these items; a four-item search answers at most "
                f"{MAX_SEARCH_CANDIDATES} candidates: {narrow}. Nothing was provided",
            )
        if not found:
            return SearchAnswer("", ())
        return self._provide(agency, row, found)

    def _candidates(self, query: FourItems) -> list[tuple[identity_pb2.IdentityRecord, Judgement]]:
        """Every record name or reading designates that :func:`judge` makes a candidate, in code order (those
        the given address rules out are not counted: the answer says nothing of people not provided)."""
        s = self._storage
        with s.env.read() as txn:
            if not self._index.ready(txn):
                after = self._index.indexed_after(txn)
                progress = f" (indexed up to 住民票コード {after})" if after else ""
                raise Rejected(
                    Problem.UNAVAILABLE,
                    f"the four-item search index is being built{progress}; try again in a minute",
                )
            codes: set[str] = set()
            for reading, folded in ((False, query.folded_name), (True, query.folded_kana)):
                if not folded:
                    continue
                limit = MAX_SEARCH_MATCHES_READ + 1
                keyed = self._index.codes(txn, reading, folded, query.birth_date, query.sex, limit)
                if len(keyed) > MAX_SEARCH_MATCHES_READ:
                    item = "kana" if reading else "name"
                    raise Rejected(
                        Problem.CONFLICT,
                        f"more than {MAX_SEARCH_MATCHES_READ} people share this {item}, birth date and sex; a "
                        "four-item search cannot narrow them: ask by 住民票コード or My Number. Nothing was provided",
                    )
                codes.update(keyed)
            found: list[tuple[identity_pb2.IdentityRecord, Judgement]] = []
            for code in sorted(codes):
                record = s.records.current(txn, code)
                how = judge(query, record) if record is not None else None
                if how is None or not how.named:  # a key collision, or changed under a stale key: not theirs
                    continue
                if how.address_differs:
                    continue
                found.append((record, how))
        return found

    def _provide(
        self,
        agency: NodeId,
        row: TableRow,
        found: list[tuple[identity_pb2.IdentityRecord, Judgement]],
    ) -> SearchAnswer:
        """Log every candidate as a provision (and audit it) in one durable transaction, then answer."""
        now = self._clock.now_ms()
        items = row.items()
        identifiers: dict[str, str] = {}
        if row.pseudonymous:
            if self._identifiers is None:
                raise Rejected(Problem.BROKEN, f"{row.table} row of {row.business} names no agency identifiers here")
            identifiers = self._identifiers.for_codes(agency, [record.resident_code for record, _ in found])

        def commit(txn: lmdb.Transaction) -> tuple[str, list[int]]:
            search_id = f"four-items/{self._storage.env.reserve(txn, Counter.SEARCH)}"
            ids = []
            for record, _ in found:
                entry = admin_pb2.ProvisionEntry(
                    agency=str(agency),
                    business_code=row.business,
                    resident_code=record.resident_code,
                    query_kind=admin_pb2.QUERY_KIND_FOUR_ITEMS,
                    items=items,
                    reference=search_id,
                )
                entry.provided_at.FromMilliseconds(now)
                detail = f"{row.business} by four items ({search_id})"
                provision_id = log_provision(self._storage, self._auditor, txn, entry, detail)
                ids.append(provision_id)
            return search_id, ids

        search_id, ids = self._storage.env.submit(commit).result()
        candidates = tuple(
            Candidate(
                row.redact(record),
                record.status == identity_pb2.RECORD_STATUS_REMOVED,
                how.reported(row.permits),
                provision_id,
                identifiers.get(record.resident_code, ""),
            )
            for (record, how), provision_id in zip(found, ids, strict=True)
        )
        return SearchAnswer(search_id, candidates)


class IndexBuilder:
    """Builds the search index from the stored records when it is missing or was built with other folds:
    started with the national server, ``SEARCH_REBUILD_CHUNK`` records per write transaction (so ingest
    waits at most one chunk), resuming from the last code indexed after a restart."""

    def __init__(self, storage: NodeStorage, index: FourItemsIndex, chunk: int = SEARCH_REBUILD_CHUNK) -> None:
        self._env = storage.env
        self._index = index
        self._chunk = chunk
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def needed(self) -> bool:
        """Start (or resume) a rebuild if one is needed; True if so."""
        return self._env.write(self._index.start_rebuild)

    def run(self) -> int:
        """Index chunk after chunk until built (or stopped); returns the records indexed."""
        total = 0
        while not self._stop.is_set():
            progress = self._env.write(lambda txn: self._index.rebuild_step(txn, self._chunk))
            total += progress.indexed
            if progress.done:
                log.info("four-item search index built (%d records indexed)", total)
                break
        return total

    def start(self) -> None:
        """In the background, if needed (a daemon thread: it ends with the process)."""
        if not self.needed():
            return
        self._thread = threading.Thread(target=self._run, name="search-index", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.run()
        except Exception:  # storage closed while stopping, or a bug: the search stays UNAVAILABLE, says so
            log.exception("building the four-item search index stopped")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _text(match: TextMatch) -> provision_pb2.TextItemMatch:
    return provision_pb2.TextItemMatch(match=match.match.value, normalisations=[f.value for f in match.folds])


def answer_message(answer: SearchAnswer) -> provision_pb2.SearchByFourItemsResponse:
    """The wire form of an answer (:class:`jukinet.domain.kana.Fold` and ``Match`` carry the wire numbers)."""
    return provision_pb2.SearchByFourItemsResponse(
        search_id=answer.search_id,
        candidates=[
            provision_pb2.FourItemsCandidate(
                record=c.record,
                provision_id=c.provision_id,
                removed=c.removed,
                name=_text(c.how.name),
                kana=_text(c.how.kana),
                municipality=c.how.municipality.value,
                address_text=_text(c.how.address_text),
                agency_identifier=c.agency_identifier,
            )
            for c in answer.candidates
        ],
    )
