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

    def by_agency_identifier(self, business_code: str, agency_identifier: str) -> ProvidedRecord:
        response = self._stub.LookupByAgencyIdentifier(
            provision_pb2.LookupByAgencyIdentifierRequest(
                business_code=business_code, agency_identifier=agency_identifier
            ),
            timeout=self._timeout,
        )
        return ProvidedRecord(response.record, response.provision_id, response.agency_identifier)
