"""``LinkService.Deliver`` at every node that receives links: a thin servicer over
:class:`jukinet.server.runtime.intake.LinkIntake`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from jukinet.domain.errors import Rejected
from jukinet.domain.node_ids import NODE_KINDS
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.intake import Accepted, LinkIntake
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.v1 import link_pb2, link_pb2_grpc

PIPELINE = 4  # batches of one stream checked ahead of their commit


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
        """Batches are checked as they arrive, each while the ones before it commit (up to ``PIPELINE``
        in flight); receipts leave in order, each once its batch is durable."""
        intake, marks = self._intake, self._intake.marks()
        prepared: asyncio.Queue[tuple[Accepted, asyncio.Future[None]] | BaseException | None] = asyncio.Queue(PIPELINE)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    accepted = await self.blocking(intake.prepare, request.batch, caller.identity, marks)
                    await prepared.put((accepted, asyncio.wrap_future(intake.commit(accepted))))
            except (Rejected, grpc.aio.AioRpcError) as exc:
                await prepared.put(exc)
                return
            await prepared.put(None)

        reader = asyncio.create_task(read())
        try:
            while (entry := await prepared.get()) is not None:
                if isinstance(entry, BaseException):
                    raise entry
                accepted, committed = entry
                await committed
                if accepted.applied:
                    intake.after_commit()
                yield link_pb2.DeliverResponse(receipt=await self.blocking(intake.receipt, accepted))
        finally:
            reader.cancel()
