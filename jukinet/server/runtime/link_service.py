"""``LinkService.Deliver`` at every node that receives links: a thin servicer over
:class:`jukinet.server.runtime.intake.LinkIntake`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from jukinet.domain.node_ids import NODE_KINDS
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.intake import LinkIntake
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.v1 import link_pb2, link_pb2_grpc


class LinkRpc(link_pb2_grpc.LinkServiceServicer):
    def __init__(self, intake: LinkIntake, blocking: Blocking) -> None:
        self._intake = intake
        self.blocking = blocking
        self.nodes = Kinds(NODE_KINDS)  # what each node may hand over is decided per item kind, by the intake

    @guarded("nodes")
    async def Deliver(
        self,
        request_iterator: AsyncIterator[link_pb2.DeliverRequest],
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> AsyncIterator[link_pb2.DeliverResponse]:
        async for request in request_iterator:
            receipt = await self.blocking(self._intake.accept, request.batch, caller.identity)
            yield link_pb2.DeliverResponse(receipt=receipt)
