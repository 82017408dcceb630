"""The agency side of push notices: subscribe, list, cancel, and receive with acknowledgements."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc

from jukinet.v1 import subscription_pb2 as S
from jukinet.v1 import subscription_pb2_grpc

_END = object()


class PushClient:
    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = subscription_pb2_grpc.SubscriptionServiceStub(channel)
        self._timeout = timeout

    def subscribe(
        self,
        business_code: str,
        mode: int,
        *,
        resident_codes: list[str] | None = None,
        municipality_codes: list[str] | None = None,
        reaching_age: int = 0,
    ) -> S.Subscription:
        target = S.PushTarget(
            resident_codes=resident_codes or [], municipality_codes=municipality_codes or [], reaching_age=reaching_age
        )
        request = S.SubscribeRequest(business_code=business_code, target=target, mode=mode)
        return self._stub.Subscribe(request, timeout=self._timeout).subscription

    def subscriptions(self) -> list[S.Subscription]:
        return list(self._stub.ListSubscriptions(S.ListSubscriptionsRequest(), timeout=self._timeout).subscriptions)

    def cancel(self, subscription_id: str) -> None:
        self._stub.CancelSubscription(
            S.CancelSubscriptionRequest(subscription_id=subscription_id), timeout=self._timeout
        )

    def receive(self, subscription_id: str) -> PushReceiver:
        return PushReceiver(self._stub, subscription_id)


class PushReceiver:
    """One Receive stream: messages are read by a thread of its own into a queue (:meth:`next`);
    :meth:`acknowledge` sends an acknowledgement on the same stream."""

    def __init__(self, stub: subscription_pb2_grpc.SubscriptionServiceStub, subscription_id: str) -> None:
        self._acks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._messages: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._call = stub.Receive(self._requests(subscription_id))
        self.error: grpc.RpcError | None = None
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"push-{subscription_id}")
        self._reader.start()

    def _requests(self, subscription_id: str) -> Iterator[S.ReceiveRequest]:
        yield S.ReceiveRequest(subscription_id=subscription_id)
        while (position := self._acks.get()) is not None:
            yield S.ReceiveRequest(acknowledge=position)

    def _read(self) -> None:
        try:
            for message in self._call:
                self._messages.put(message)
        except grpc.RpcError as exc:
            self.error = exc
        self._messages.put(_END)

    def next(self, timeout: float = 10.0) -> S.ReceiveResponse | None:
        """The next message; None when the stream ended (its status is in :attr:`error`). Raises
        ``queue.Empty`` if none arrives within ``timeout``."""
        item = self._messages.get(timeout=timeout)
        if item is _END:
            self._messages.put(_END)
            return None
        return item  # type: ignore[return-value]

    def acknowledge(self, position: int) -> None:
        self._acks.put(position)

    def wait_closed(self, timeout: float = 10.0) -> grpc.RpcError | None:
        """Wait for the stream to end; its error (None if it ended cleanly)."""
        self._reader.join(timeout)
        return self.error

    def close(self) -> None:
        self._acks.put(None)
        self._call.cancel()
        self._reader.join(5)
