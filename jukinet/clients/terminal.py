"""The operator-terminal client: operator login, resident registration, administration, audit.

After :meth:`TerminalClient.login` the session travels with every call as binary metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from jukinet.clients.transport import SESSION_METADATA_KEY
from jukinet.domain.operators import login_signing_input
from jukinet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    cards_pb2,
    cards_pb2_grpc,
    envelope_pb2,
    identity_pb2,
    operator_pb2,
    operator_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)

DEFAULT_CHUNK = 1000


class Card(Protocol):
    """An unlocked operator card (jukinet.hsm.card.UnlockedCard)."""

    certificate_der: bytes

    def sign(self, data: bytes) -> bytes: ...


@dataclass
class Registration:
    """What a bulk registration did, over all its chunks."""

    stored: int = 0
    already_stored: int = 0
    chunks: int = 0
    first_sequence: int = 0
    last_sequence: int = 0
    refused: dict[int, Sequence[registry_pb2.FieldProblem]] = field(default_factory=dict)  # by row index

    def add(self, answer: registry_pb2.RegisterResidentsResponse, first_row: int) -> None:
        """Count one chunk's answer; ``first_row`` is the index of the chunk's first row."""
        if answer.stored:
            self.first_sequence = self.first_sequence or answer.first_sequence
            self.last_sequence = answer.last_sequence
        self.stored += answer.stored
        self.already_stored += answer.already_stored
        self.chunks += 1
        for row in answer.refused_rows:
            self.refused[first_row + row.index] = list(row.problems)


class TerminalClient:
    """A terminal's connection to one node. ``certificate_sha256`` is the terminal's own TLS certificate
    fingerprint, which the operator's card signs into every login."""

    def __init__(self, channel: grpc.Channel, certificate_sha256: bytes = b"", timeout: float = 30.0) -> None:
        self.channel = channel  # other clients of this terminal's services (jukinet.clients.copies) share it
        self._registry = registry_pb2_grpc.ResidentRegistryServiceStub(channel)
        self._admin = admin_pb2_grpc.NodeAdminServiceStub(channel)
        self._auth = operator_pb2_grpc.OperatorAuthServiceStub(channel)
        self._operators = operator_pb2_grpc.OperatorAdminServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self._cards = cards_pb2_grpc.CardServiceStub(channel)
        self._fp = certificate_sha256
        self._timeout = timeout
        self.session: envelope_pb2.Signed | None = None
        self.claims: operator_pb2.SessionClaims | None = None

    def call(self, rpc: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        """Call ``rpc`` (a stub's method on :attr:`channel`) with this terminal's operator session."""
        return self._call(rpc, request, timeout)

    def _call(self, rpc: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        metadata = ((SESSION_METADATA_KEY, self.session.SerializeToString()),) if self.session else None
        return rpc(request, timeout=timeout or self._timeout, metadata=metadata)

    # -- operator login -----------------------------------------------------------------------------------

    def login(self, operator_id: str, card: Card, sample: Sequence[float]) -> operator_pb2.SessionClaims:
        """Two-factor login: the unlocked card signs the node's challenge; the sample is matched there."""
        challenge = self._auth.BeginLogin(
            operator_pb2.BeginLoginRequest(operator_id=operator_id), timeout=self._timeout
        )
        signature = card.sign(login_signing_input(challenge.node_id, challenge.challenge, self._fp))
        reply = self._auth.CompleteLogin(
            operator_pb2.CompleteLoginRequest(
                challenge_id=challenge.challenge_id,
                operator_id=operator_id,
                card_certificate=card.certificate_der,
                signature=signature,
                sample=operator_pb2.BiometricSample(features=[float(x) for x in sample]),
            ),
            timeout=self._timeout,
        )
        self.session, self.claims = reply.session, reply.claims
        return reply.claims

    def logout(self) -> None:
        self._call(self._auth.Logout, operator_pb2.LogoutRequest())
        self.session = self.claims = None

    # -- operator administration ----------------------------------------------------------------------------

    def enroll_operator(
        self, operator_id: str, card_certificate: bytes, roles: Sequence[str], template: Sequence[float]
    ) -> operator_pb2.OperatorInfo:
        request = operator_pb2.EnrollOperatorRequest(
            operator_id=operator_id,
            card_certificate=card_certificate,
            roles=list(roles),
            template=operator_pb2.BiometricSample(features=[float(x) for x in template]),
        )
        return self._call(self._operators.EnrollOperator, request).operator

    def unlock_operator(self, operator_id: str) -> operator_pb2.OperatorInfo:
        request = operator_pb2.UnlockOperatorRequest(operator_id=operator_id)
        return self._call(self._operators.UnlockOperator, request).operator

    def revoke_sessions(self, operator_id: str) -> None:
        self._call(self._operators.RevokeSessions, operator_pb2.RevokeSessionsRequest(operator_id=operator_id))

    def operator(self, operator_id: str) -> operator_pb2.OperatorInfo:
        return self._call(
            self._operators.GetOperator, operator_pb2.GetOperatorRequest(operator_id=operator_id)
        ).operator

    def login_attempts(self, operator_id: str = "") -> operator_pb2.ListLoginAttemptsResponse:
        """Administrator: failed logins per (operator, terminal) and logins in progress per terminal."""
        request = operator_pb2.ListLoginAttemptsRequest(operator_id=operator_id)
        return self._call(self._operators.ListLoginAttempts, request)

    # -- residents ------------------------------------------------------------------------------------------

    def record_change(self, record: identity_pb2.IdentityRecord) -> registry_pb2.RecordChangeResponse:
        return self._call(self._registry.RecordChange, registry_pb2.RecordChangeRequest(record=record))

    def register(
        self,
        records: Iterable[identity_pb2.IdentityRecord],
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 600,
    ) -> Registration:
        """Bulk registration over one stream, ``chunk_size`` records per message; refused rows are in the
        result (by index in ``records``), the others stored or already stored."""
        done = Registration()
        for answer in self.register_chunks(_chunks(records, chunk_size), timeout):
            done.add(answer, done.chunks * chunk_size)  # every chunk but the last is full
        return done

    def register_chunks(
        self, chunks: Iterable[registry_pb2.RegisterResidentsRequest], timeout: float | None = None
    ) -> Iterator[registry_pb2.RegisterResidentsResponse]:
        """One answer per chunk, in order, each once the chunk's rows are durable. ``chunks`` is read by
        gRPC's own thread as the stream has room."""
        return self._call(self._registry.RegisterResidents, chunks, timeout)

    def set_up_card(
        self, resident_code: str, card_serial: str, auth_public_key: bytes, signature_public_key: bytes
    ) -> cards_pb2.CardRecord:
        """交付前設定 at a CS (role manage-cards): the card CA's certificates of the card's two keys (DER SPKI)."""
        request = cards_pb2.SetUpCardRequest(
            resident_code=resident_code,
            card_serial=card_serial,
            auth_public_key=auth_public_key,
            signature_public_key=signature_public_key,
        )
        return self._call(self._cards.SetUpCard, request).card

    def change_card_state(self, card_serial: str, action: int) -> cards_pb2.CardRecord:
        """交付, 一時停止, 再開, 返納, 廃止 (a cards_pb2.CardAction)."""
        request = cards_pb2.ChangeCardStateRequest(card_serial=card_serial, action=action)  # type: ignore[arg-type]
        return self._call(self._cards.ChangeCardState, request).card

    def update_card_face(self, card_serial: str, signature_public_key: bytes) -> cards_pb2.CardRecord:
        """券面事項の更新: a new signature certificate with the holder's current card face."""
        request = cards_pb2.UpdateCardFaceRequest(card_serial=card_serial, signature_public_key=signature_public_key)
        return self._call(self._cards.UpdateCardFace, request).card

    def cards(self, resident_code: str = "", card_serial: str = "") -> Sequence[cards_pb2.CardRecord]:
        """A resident's cards, or one card."""
        if card_serial:
            request = cards_pb2.ListCardsRequest(card_serial=card_serial)
        else:
            request = cards_pb2.ListCardsRequest(resident_code=resident_code)
        return list(self._call(self._cards.ListCards, request).cards)

    def resident(self, resident_code: str) -> identity_pb2.IdentityRecord:
        request = registry_pb2.GetResidentRequest(resident_code=resident_code)
        return self._call(self._registry.GetResident, request).record

    # -- node administration and audit ----------------------------------------------------------------------

    def status(self, inbound: bool = False) -> admin_pb2.GetStatusResponse:
        """Counts and links; with ``inbound``, also how far every queue stored from has come."""
        return self._call(self._admin.GetStatus, admin_pb2.GetStatusRequest(inbound=inbound))

    def provisions(self, after_id: int = 0, limit: int = 100) -> Sequence[admin_pb2.ProvisionEntry]:
        request = admin_pb2.ListProvisionsRequest(after_id=after_id, limit=limit)
        return self._call(self._admin.ListProvisions, request).entries

    def quarantine(self, destination: str = "") -> Sequence[admin_pb2.QuarantinedItem]:
        """Outbox items a destination refused for good (role 'manage-links')."""
        return self._call(self._admin.ListQuarantine, admin_pb2.ListQuarantineRequest(destination=destination)).items

    def retry_quarantined(self, destination: str, positions: Sequence[int] = ()) -> admin_pb2.RetryQuarantinedResponse:
        """Put quarantined items (all of ``destination``'s if none named) back at the tail of the queue."""
        request = admin_pb2.RetryQuarantinedRequest(destination=destination, positions=list(positions))
        return self._call(self._admin.RetryQuarantined, request)

    def drop_quarantined(self, destination: str, positions: Sequence[int] = ()) -> admin_pb2.DropQuarantinedResponse:
        """Give quarantined items up (all of ``destination``'s if none named)."""
        request = admin_pb2.DropQuarantinedRequest(destination=destination, positions=list(positions))
        return self._call(self._admin.DropQuarantined, request)

    def tree_head(self) -> audit_pb2.GetSignedTreeHeadResponse:
        return self._call(self.audit.GetSignedTreeHead, audit_pb2.GetSignedTreeHeadRequest())

    def audit_entries(self, start: int, end: int) -> Iterator[bytes]:
        """Entries [start, end) as hashed, page by page (the node cuts a page to fit a response)."""
        while start < end:
            request = audit_pb2.GetEntriesRequest(start=start, end=min(end, start + 1000))
            page = self._call(self.audit.GetEntries, request)
            if page.end <= start:
                raise RuntimeError(f"the node returned no entries from {start}")
            yield from page.leaf_data
            start = page.end


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
