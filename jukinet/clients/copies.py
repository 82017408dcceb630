"""The counter's side of 広域交付: the request a terminal encodes (the resident's card signs over its exact
bytes) and the terminal's calls for copies, their issuance log and DV support measures."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from jukinet.clients.cards import PresentableCard, present_card
from jukinet.clients.terminal import TerminalClient
from jukinet.domain.copies import CARD_PURPOSE
from jukinet.domain.node_ids import NodeId
from jukinet.v1 import cards_pb2, copies_pb2, copies_pb2_grpc


def copy_request(
    requesting_cs: NodeId | str,
    home_cs: NodeId | str,
    resident_code: str = "",
    *,
    include_resident_code: bool = False,
    include_my_number: bool = False,
    now_ms: int | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """A serialized CopyRequest: the bytes the resident's card signs and the home CS answers."""
    request = copies_pb2.CopyRequest(
        requesting_cs=str(requesting_cs),
        home_cs=str(home_cs),
        resident_code=resident_code,
        include_resident_code=include_resident_code,
        include_my_number=include_my_number,
        nonce=secrets.token_bytes(32) if nonce is None else nonce,
    )
    request.requested_at.FromMilliseconds(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    return request.SerializeToString()


def present_for_copy(card: PresentableCard, request: bytes) -> cards_pb2.CardPresentation:
    """The resident's unlocked card, presented for ``request`` to the home CS it names (once, for 120 s)."""
    home = copies_pb2.CopyRequest.FromString(request).home_cs
    return present_card(card, CARD_PURPOSE, home, request)


class CopyClient:
    """広域交付 calls of an operator terminal, on its channel and with its operator session."""

    def __init__(self, terminal: TerminalClient) -> None:
        self._terminal = terminal
        self._copies = copies_pb2_grpc.CertifiedCopyServiceStub(terminal.channel)
        self._dv = copies_pb2_grpc.DvMeasureServiceStub(terminal.channel)

    def request_copy(
        self, request: bytes, card: cards_pb2.CardPresentation | None = None
    ) -> copies_pb2.RequestCopyResponse:
        """Ask this CS for a copy from the home CS the request names (role issue-copies); the answer has been
        verified by this CS."""
        message = copies_pb2.RequestCopyRequest(request=request, card=card)
        return self._terminal.call(self._copies.RequestCopy, message)

    def issuances(
        self, resident_code: str, after_serial: int = 0, limit: int = 100
    ) -> Sequence[copies_pb2.CopyIssuance]:
        """Copies of a resident issued by this CS, when and to which CS (role answer-disclosure)."""
        request = copies_pb2.ListCopyIssuancesRequest(
            resident_code=resident_code, after_serial=after_serial, limit=limit
        )
        return self._terminal.call(self._copies.ListCopyIssuances, request).issuances

    def register_dv_measure(self, resident_code: str, municipalities: Sequence[str] = ()) -> copies_pb2.DvMeasure:
        """A DV support measure: refuse every 広域交付 request, or (``municipalities``) those made there."""
        scope = copies_pb2.DV_SCOPE_MUNICIPALITIES if municipalities else copies_pb2.DV_SCOPE_ALL_REQUESTS
        request = copies_pb2.RegisterDvMeasureRequest(
            resident_code=resident_code, scope=scope, municipalities=list(municipalities)
        )
        return self._terminal.call(self._dv.RegisterDvMeasure, request).measure

    def dv_measures(self, resident_code: str) -> Sequence[copies_pb2.DvMeasure]:
        request = copies_pb2.ListDvMeasuresRequest(resident_code=resident_code)
        return self._terminal.call(self._dv.ListDvMeasures, request).measures

    def remove_dv_measure(self, resident_code: str, measure_id: int) -> copies_pb2.DvMeasure:
        request = copies_pb2.RemoveDvMeasureRequest(resident_code=resident_code, measure_id=measure_id)
        return self._terminal.call(self._dv.RemoveDvMeasure, request).measure
