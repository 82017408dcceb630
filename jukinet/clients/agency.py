"""The agency-side client: look residents up for one legally listed business (at the national server, or
with a channel to a prefecture server, under that prefecture's tables)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from itertools import islice

import grpc

from jukinet.v1 import identity_pb2, provision_pb2, provision_pb2_grpc


@dataclass(frozen=True)
class ProvidedRecord:
    record: identity_pb2.IdentityRecord
    provision_id: int
    agency_identifier: str = ""  # 機関別符号, where the business's row names residents so


class BatchKind(Enum):
    """What the codes of a batch are (a chunk holds one kind)."""

    RESIDENT_CODE = "resident_codes"
    MY_NUMBER = "my_numbers"
    AGENCY_IDENTIFIER = "agency_identifiers"  # a row naming residents by 機関別符号: records come without numbers


@dataclass(frozen=True)
class BatchResult:
    """One code of a batch: FOUND and REMOVED carry the record (redacted to the row) and its provision id."""

    code: str
    status: provision_pb2.BatchStatus.ValueType
    record: identity_pb2.IdentityRecord | None = None
    removal: provision_pb2.BatchRemoval | None = None  # REMOVED only: when and why
    provision_id: int = 0


@dataclass(frozen=True)
class BatchAnswer:
    """The answer to one chunk: the codes sent, and per code a status; records stay encoded until asked for."""

    codes: list[str]
    response: provision_pb2.BatchLookupResponse

    @property
    def chunk_id(self) -> int:
        return self.response.chunk_id

    def results(self) -> Iterator[BatchResult]:
        r = self.response
        records, removals = iter(r.records), iter(r.removals)
        provision_id = r.first_provision_id
        for code, status in zip(self.codes, r.statuses, strict=True):
            if status in (provision_pb2.BATCH_STATUS_FOUND, provision_pb2.BATCH_STATUS_REMOVED):
                record = identity_pb2.IdentityRecord.FromString(next(records))
                removal = next(removals) if status == provision_pb2.BATCH_STATUS_REMOVED else None
                yield BatchResult(code, status, record, removal, provision_id)
                provision_id += 1
            else:
                yield BatchResult(code, status)


class AgencyClient:
    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = provision_pb2_grpc.IdentityProvisionServiceStub(channel)
        self._search = provision_pb2_grpc.FourItemSearchServiceStub(channel)
        self._batches = provision_pb2_grpc.BatchLookupServiceStub(channel)
        self._timeout = timeout

    def by_resident_code(self, business_code: str, resident_code: str) -> ProvidedRecord:
        response = self._stub.LookupByResidentCode(
            provision_pb2.LookupByResidentCodeRequest(business_code=business_code, resident_code=resident_code),
            timeout=self._timeout,
        )
        return ProvidedRecord(response.record, response.provision_id, response.agency_identifier)

    def by_my_number(self, business_code: str, my_number: str) -> ProvidedRecord:
        response = self._stub.LookupByMyNumber(
            provision_pb2.LookupByMyNumberRequest(business_code=business_code, my_number=my_number),
            timeout=self._timeout,
        )
        return ProvidedRecord(response.record, response.provision_id)

    def search(
        self,
        business_code: str,
        birth_date: identity_pb2.Date,
        sex: int,
        name: str = "",
        kana: str = "",
        municipality_code: str = "",
        address_text: str = "",
    ) -> provision_pb2.SearchByFourItemsResponse:
        """４情報検索: every candidate, each with how it matched (FAILED_PRECONDITION when too many match)."""
        request = provision_pb2.SearchByFourItemsRequest(
            business_code=business_code,
            name=name,
            kana=kana,
            birth_date=birth_date,
            sex=sex,  # type: ignore[arg-type]
            municipality_code=municipality_code,
            address_text=address_text,
        )
        return self._search.SearchByFourItems(request, timeout=self._timeout)

    def by_agency_identifier(self, business_code: str, agency_identifier: str) -> ProvidedRecord:
        response = self._stub.LookupByAgencyIdentifier(
            provision_pb2.LookupByAgencyIdentifierRequest(
                business_code=business_code, agency_identifier=agency_identifier
            ),
            timeout=self._timeout,
        )
        return ProvidedRecord(response.record, response.provision_id, response.agency_identifier)

    def batch_lookup(
        self,
        business_code: str,
        codes: Iterable[str],
        chunk: int = 1000,
        kind: BatchKind = BatchKind.RESIDENT_CODE,
        timeout: float | None = None,
    ) -> Iterator[BatchAnswer]:
        """Batch query (定期照会): ``codes`` sent in chunks of ``chunk`` over one stream, read lazily; one
        :class:`BatchAnswer` per chunk, in order. The server reads a few chunks ahead of its answers, and
        gRPC's flow control holds this side back beyond that, so ``codes`` may be a generator of millions."""
        sent: deque[list[str]] = deque()
        lock = threading.Lock()

        def requests() -> Iterator[provision_pb2.BatchLookupRequest]:
            it = iter(codes)
            chunk_id = 0
            while True:
                part = list(islice(it, chunk))
                if not part:
                    return
                with lock:
                    sent.append(part)
                request = provision_pb2.BatchLookupRequest(chunk_id=chunk_id, **{kind.value: part})
                if chunk_id == 0:
                    request.business_code = business_code
                chunk_id += 1
                yield request

        answers = self._batches.BatchLookup(requests(), timeout=timeout)
        try:
            for expected, response in enumerate(answers):
                with lock:
                    part = sent.popleft() if sent else None
                if part is None or response.chunk_id != expected or len(response.statuses) != len(part):
                    raise ValueError(f"answer for chunk {response.chunk_id} does not match chunk {expected} sent")
                yield BatchAnswer(part, response)
        finally:
            answers.cancel()
