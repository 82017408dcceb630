"""The operator-terminal client: record changes at a CS, bulk registration, node status."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import grpc

from jukinet.v1 import admin_pb2, admin_pb2_grpc, identity_pb2, registry_pb2, registry_pb2_grpc

DEFAULT_CHUNK = 1000


class TerminalClient:
    def __init__(self, channel: grpc.Channel, timeout: float = 30.0) -> None:
        self._registry = registry_pb2_grpc.ResidentRegistryServiceStub(channel)
        self._admin = admin_pb2_grpc.NodeAdminServiceStub(channel)
        self._timeout = timeout

    def record_change(self, record: identity_pb2.IdentityRecord) -> registry_pb2.RecordChangeResponse:
        return self._registry.RecordChange(registry_pb2.RecordChangeRequest(record=record), timeout=self._timeout)

    def register(
        self,
        records: Iterable[identity_pb2.IdentityRecord],
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 600,
    ) -> registry_pb2.RegisterResidentsResponse:
        """Bulk registration over one stream, ``chunk_size`` records per message (each chunk atomic)."""
        return self._registry.RegisterResidents(_chunks(records, chunk_size), timeout=timeout)

    def resident(self, resident_code: str) -> identity_pb2.IdentityRecord:
        request = registry_pb2.GetResidentRequest(resident_code=resident_code)
        return self._registry.GetResident(request, timeout=self._timeout).record

    def status(self) -> admin_pb2.GetStatusResponse:
        return self._admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=self._timeout)

    def provisions(self, after_id: int = 0, limit: int = 100) -> Sequence[admin_pb2.ProvisionEntry]:
        request = admin_pb2.ListProvisionsRequest(after_id=after_id, limit=limit)
        return self._admin.ListProvisions(request, timeout=self._timeout).entries


def _chunks(
    records: Iterable[identity_pb2.IdentityRecord], size: int
) -> Iterator[registry_pb2.RegisterResidentsRequest]:
    chunk = registry_pb2.RegisterResidentsRequest()
    for record in records:
        chunk.records.append(record)
        if len(chunk.records) >= size:
            yield chunk
            chunk = registry_pb2.RegisterResidentsRequest()
    if chunk.records:
        yield chunk
