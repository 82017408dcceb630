"""The agency-side client: look residents up at the national server for one legally listed business."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from jukinet.v1 import identity_pb2, provision_pb2, provision_pb2_grpc


@dataclass(frozen=True)
class ProvidedRecord:
    record: identity_pb2.IdentityRecord
    provision_id: int


class AgencyClient:
    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = provision_pb2_grpc.IdentityProvisionServiceStub(channel)
        self._timeout = timeout

    def by_resident_code(self, business_code: str, resident_code: str) -> ProvidedRecord:
        response = self._stub.LookupByResidentCode(
            provision_pb2.LookupByResidentCodeRequest(business_code=business_code, resident_code=resident_code),
            timeout=self._timeout,
        )
        return ProvidedRecord(response.record, response.provision_id)

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
        return self._stub.SearchByFourItems(request, timeout=self._timeout)
