"""The receiving end of the tier notice stream, shared by prefecture and national servers.

For each batch, before anything is stored: the signature is verified against the signer's
certificate (which must be the TLS peer's own), every notice must be within the sender's authority,
and every record must be valid. Then the batch commits in one transaction (records, history, inbox
high-water marks and, at a prefecture, the outbox to the national server) and only then is it
acknowledged. A batch that fails any check ends the stream with the status that says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.records import status_for, validate_record
from jukinet.node.batches import BatchRejected, BatchVerifier
from jukinet.node.security import Caller, PeerAuthenticator, Policy, guarded
from jukinet.storage.node_store import NodeStore, SequenceGap
from jukinet.v1 import notice_pb2, notice_pb2_grpc


class NoticeAuthority(Policy):
    """A caller policy that also decides, per notice, whether the sender may speak for it."""

    def notice_problem(self, caller: Caller, notice: notice_pb2.ChangeNotice) -> str | None: ...


@dataclass(frozen=True)
class MunicipalitiesOfHostedPrefectures(NoticeAuthority):
    """At a prefecture server: a CS of a hosted prefecture, speaking only for its own municipality."""

    prefecture_codes: frozenset[str]

    def deny(self, caller: Caller) -> str | None:
        for cs in caller.of_kind(NodeKind.CS):
            if cs.code[:2] in self.prefecture_codes:
                return None
        hosted = ", ".join(sorted(self.prefecture_codes))
        return f"{caller.primary} is not a CS of a prefecture served here ({hosted})"

    def notice_problem(self, caller: Caller, notice: notice_pb2.ChangeNotice) -> str | None:
        own = {str(n) for n in caller.of_kind(NodeKind.CS)}
        municipality = notice.record.address.municipality_code
        if notice.origin not in own:
            return f"notice {notice.origin}#{notice.sequence} did not originate at {caller.primary}"
        if f"cs:{municipality}" not in own:
            return (
                f"{caller.primary} may not send records of municipality {municipality} "
                f"(resident {notice.record.resident_code})"
            )
        return None


@dataclass(frozen=True)
class MunicipalitiesOfCallerPrefectures(NoticeAuthority):
    """At the national server: a prefecture server, speaking only for its own prefectures' CSs."""

    def deny(self, caller: Caller) -> str | None:
        if caller.of_kind(NodeKind.PREFECTURE):
            return None
        return f"{caller.primary} is not a prefecture server"

    def notice_problem(self, caller: Caller, notice: notice_pb2.ChangeNotice) -> str | None:
        prefectures = {n.code for n in caller.of_kind(NodeKind.PREFECTURE)}
        try:
            origin = NodeId.parse(notice.origin)
        except ValueError as exc:
            return f"notice origin: {exc}"
        municipality = notice.record.address.municipality_code
        if origin.kind is not NodeKind.CS or origin.code[:2] not in prefectures:
            return f"{caller.primary} may not forward notices of {notice.origin}"
        if municipality[:2] not in prefectures or municipality != origin.code:
            return (
                f"{caller.primary} may not send records of municipality {municipality} "
                f"(resident {notice.record.resident_code}, origin {notice.origin})"
            )
        return None


class NoticeIngestService(notice_pb2_grpc.NoticeServiceServicer):
    def __init__(
        self,
        authenticator: PeerAuthenticator,
        store: NodeStore,
        verifier: BatchVerifier,
        authority: NoticeAuthority,
        forward: bool,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.authenticator = authenticator
        self._store = store
        self._verifier = verifier
        self.authority = authority
        self._forward = forward
        self._on_stored = on_stored

    def _check(self, batch: notice_pb2.NoticeBatch, caller: Caller) -> None:
        for index, notice in enumerate(batch.notices):
            problem = self.authority.notice_problem(caller, notice)
            if problem is not None:
                raise BatchRejected(grpc.StatusCode.PERMISSION_DENIED, problem)
            problems = validate_record(notice.record)
            if not problems and notice.record.status != status_for(notice.record.change_reason):
                problems.append("status does not match the change reason")
            if problems:
                raise BatchRejected(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"notice {index} ({notice.origin}#{notice.sequence}): {'; '.join(problems)}",
                )

    @guarded("authority")
    def Deliver(
        self,
        request_iterator: Iterator[notice_pb2.DeliverRequest],
        context: grpc.ServicerContext,
        caller: Caller,
    ) -> Iterator[notice_pb2.DeliverResponse]:
        for request in request_iterator:
            try:
                batch = self._verifier.verify(request.batch, caller)
                self._check(batch, caller)
            except BatchRejected as exc:
                context.abort(exc.status, str(exc))
            try:
                result = self._store.ingest_notices(batch.notices, len(batch.notices), self._forward)
            except SequenceGap as exc:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            if self._forward and result.applied:
                self._on_stored()
            yield notice_pb2.DeliverResponse(
                last_sequence=batch.last_sequence, applied=result.applied, duplicates=result.duplicates
            )
