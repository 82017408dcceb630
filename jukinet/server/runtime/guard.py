"""The RPC edge: every servicer method is wrapped by :func:`guarded`, which applies the RPC's policy
before the body and maps a :class:`Rejected` to its gRPC status (once, here).

A servicer method may be plain (``def M(self, request, caller)``): its policy check and body then run
together in the node's blocking pool, off the event loop, and it never sees the gRPC context — it
returns a response or raises Rejected. Streaming methods are ``async`` (``async def M(self, request,
context, caller)``) and hand their blocking work to the pool themselves. A node refuses to start while
any RPC of a service it serves has no policy (:func:`check_all_guarded`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from jukinet.domain.errors import Problem, Rejected
from jukinet.server.runtime.peers import Caller, current_caller
from jukinet.server.runtime.policy import Policy
from jukinet.server.runtime.status import abort

log = logging.getLogger(__name__)
Handler = Callable[..., Any]
_INTERNAL = "internal error; the node's log has the details"


class AlreadyAudited(Rejected):
    """A refusal whose body wrote its own audit entry (with a target, or in the transaction that counted
    a failure); the guard answers it without auditing it again."""


def guarded(policy: Policy | str, audit: int | None = None) -> Callable[[Handler], Handler]:
    """Mark a servicer method with its policy (a Policy, or the name of the servicer attribute holding
    one). With ``audit`` (an AuditAction), refusals are written to the servicer's ``auditor`` first.
    The servicer needs a ``blocking`` attribute (:class:`jukinet.server.runtime.executor.Blocking`)."""

    def decorate(method: Handler) -> Handler:
        def admit(servicer: Any, caller: Caller) -> None:
            rule: Policy = getattr(servicer, policy) if isinstance(policy, str) else policy
            denial = rule.deny(caller)
            if denial is not None:
                raise denial

        @contextlib.asynccontextmanager
        async def answering(servicer: Any, context: grpc.aio.ServicerContext, caller: Caller) -> AsyncIterator[None]:
            """Map what the body raises to the call's status, once (refusals audited first)."""
            try:
                yield
            except Rejected as exc:
                auditor = getattr(servicer, "auditor", None)
                if audit is not None and auditor is not None and not isinstance(exc, AlreadyAudited):
                    await servicer.blocking(auditor.refused, audit, caller, exc)
                await abort(context, exc)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:
                log.exception("%s failed", method.__qualname__)
                await context.abort(grpc.StatusCode.INTERNAL, _INTERNAL)

        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream_wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
                caller = current_caller()
                async with answering(self, context, caller):
                    await self.blocking(admit, self, caller)
                    async for response in method(self, request, context, caller):
                        yield response

            wrapper: Handler = stream_wrapper
        else:
            is_async = inspect.iscoroutinefunction(method)

            def run_plain(servicer: Any, caller: Caller, request: Any) -> Any:
                admit(servicer, caller)
                return method(servicer, request, caller)

            @functools.wraps(method)
            async def unary_wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
                caller = current_caller()
                async with answering(self, context, caller):
                    if is_async:
                        await self.blocking(admit, self, caller)
                        return await method(self, request, context, caller)
                    return await self.blocking(run_plain, self, caller, request)

            wrapper = unary_wrapper
        wrapper.__jukinet_policy__ = policy  # type: ignore[attr-defined]
        return wrapper

    return decorate


def check_all_guarded(servicer: object, service_descriptor: Any) -> None:
    """Refuse to serve a service any of whose RPCs lacks a policy."""
    for method in service_descriptor.methods:
        impl = getattr(type(servicer), method.name, None)
        if impl is None or not hasattr(impl, "__jukinet_policy__"):
            raise Rejected(Problem.BROKEN, f"{service_descriptor.full_name}.{method.name} has no access policy")
