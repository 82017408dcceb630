"""The agency-side client: look residents up for one legally listed business (at the national server, or
with a channel to a prefecture server, under that prefecture's tables)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from jukinet.v1 import identity_pb2, provision_pb2, provision_pb2_grpc


@dataclass(frozen=True)
class ProvidedRecord:
    record: identity_pb2.IdentityRecord
    provision_id: int
    agency_identifier: str = ""  # 機関別符号, where the business's row names residents so


class AgencyClient:
    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = provision_pb2_grpc.IdentityProvisionServiceStub(channel)
        self._search = provision_pb2_grpc.FourItemSearchServiceStub(channel)
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
