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
