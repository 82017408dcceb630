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
    directory_pb2,
    directory_pb2_grpc,
    envelope_pb2,
    identity_pb2,
    local_pb2,
    moves_pb2,
    moves_pb2_grpc,
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
    assigned: dict[int, tuple[str, str]] = field(default_factory=dict)  # row index -> (resident code, My Number)

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
        for row in answer.assigned:
            self.assigned[first_row + row.index] = (row.resident_code, row.my_number)


class TerminalClient:
    """A terminal's connection to one node. ``certificate_sha256`` is the terminal's own TLS certificate
    fingerprint, which the operator's card signs into every login."""

    def __init__(self, channel: grpc.Channel, certificate_sha256: bytes = b"", timeout: float = 30.0) -> None:
        self.channel = channel  # other clients of this terminal's services (jukinet.clients.copies) share it
        self._registry = registry_pb2_grpc.ResidentRegistryServiceStub(channel)
        self._moves = moves_pb2_grpc.MoveServiceStub(channel)
        self._admin = admin_pb2_grpc.NodeAdminServiceStub(channel)
        self._auth = operator_pb2_grpc.OperatorAuthServiceStub(channel)
        self._operators = operator_pb2_grpc.OperatorAdminServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self._directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        self._publish = directory_pb2_grpc.DirectoryPublishServiceStub(channel)
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

    def record_change(
        self, record: identity_pb2.IdentityRecord, local: local_pb2.LocalResidentData | None = None
    ) -> registry_pb2.RecordChangeResponse:
        """Record one change; ``local`` (世帯主, 続柄, 本籍, 筆頭者) is kept at the CS only. The resident code
        and My Number the CS gave it (when ``record`` left them empty) are written back into ``record`` too,
        so the caller knows whom it registered."""
        request = registry_pb2.RecordChangeRequest(record=record, local=local)
        answer = self._call(self._registry.RecordChange, request)
        record.resident_code, record.my_number = answer.record.resident_code, answer.record.my_number
        return answer

    def register(
        self,
        records: Iterable[identity_pb2.IdentityRecord],
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 600,
    ) -> Registration:
        """Bulk registration over one stream, ``chunk_size`` records per message; refused rows are in the
        result (by index in ``records``), the others stored or already stored. Rows that left resident_code
        or my_number empty get what the CS assigned written back (and listed in ``assigned``)."""
        done = Registration()
        sent: dict[int, list[identity_pb2.IdentityRecord]] = {}

        def chunks() -> Iterator[registry_pb2.RegisterResidentsRequest]:
            rows: list[identity_pb2.IdentityRecord] = []
            for chunk in _chunks(_kept(records, rows), chunk_size):
                sent[len(sent)] = rows[: len(chunk.records)]
                del rows[: len(chunk.records)]
                yield chunk

        for answer in self.register_chunks(chunks(), timeout):
            rows = sent.pop(done.chunks, [])
            for row in answer.assigned:
                if row.index < len(rows):
                    rows[row.index].resident_code, rows[row.index].my_number = row.resident_code, row.my_number
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
        return self.resident_entry(resident_code).record

    def resident_entry(self, resident_code: str) -> registry_pb2.GetResidentResponse:
        """The record and the CS's local-only items."""
        request = registry_pb2.GetResidentRequest(resident_code=resident_code)
        return self._call(self._registry.GetResident, request)

    # -- moves between municipalities -----------------------------------------------------------------------

    def move_out(
        self,
        resident_codes: Sequence[str],
        destination_municipality_code: str,
        planned_date: identity_pb2.Date,
        new_address_text: str = "",
    ) -> moves_pb2.MoveOutResponse:
        """転出 of the members named; the CS sends the 転出証明書情報 to the destination's CS."""
        request = moves_pb2.MoveOutRequest(
            resident_codes=list(resident_codes),
            destination_municipality_code=destination_municipality_code,
            planned_date=planned_date,
            new_address_text=new_address_text,
        )
        return self._call(self._moves.MoveOut, request)

    def move_in(
        self,
        grant_id: str,
        move_in_date: identity_pb2.Date,
        address_text: str,
        resident_codes: Sequence[str] = (),
        present: Callable[[bytes], Any] | None = None,
    ) -> moves_pb2.MoveInResponse:
        """転入 from a received 転出証明書情報 (every member not yet moved in, unless named). With
        ``present`` (binding → CardPresentation: the resident's card at the counter) it is a 特例転入."""
        request = moves_pb2.MoveInRequest(
            grant_id=grant_id, resident_codes=list(resident_codes), move_in_date=move_in_date, address_text=address_text
        )
        if present is not None:
            request.card.CopyFrom(present(request.SerializeToString(deterministic=True)))
        return self._call(self._moves.MoveIn, request)

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

    def directory(self, known_version: int = 0) -> directory_pb2.GetDirectoryResponse:
        """The network directory the node holds (signed by the national server; verify before believing)."""
        return self._call(self._directory.GetDirectory, directory_pb2.GetDirectoryRequest(known_version=known_version))

    def publish_directory(
        self, content: directory_pb2.NetworkDirectory, validity_seconds: int = 0
    ) -> directory_pb2.PublishDirectoryResponse:
        """National server, role 'administer-operators': sign and serve ``content`` as the next version."""
        request = directory_pb2.PublishDirectoryRequest(content=content, validity_seconds=validity_seconds)
        return self._call(self._publish.PublishDirectory, request)

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


def _kept(
    records: Iterable[identity_pb2.IdentityRecord], into: list[identity_pb2.IdentityRecord]
) -> Iterator[identity_pb2.IdentityRecord]:
    for record in records:
        into.append(record)
        yield record


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
