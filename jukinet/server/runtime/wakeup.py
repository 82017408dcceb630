"""Wake coroutines when something was committed: no polling loop that costs CPU while nothing happens.

The write path calls :meth:`Wakeup.notify` (from any thread, or the event loop) after a commit. A waiter
either awaits :meth:`Wakeup.wait` once, or keeps an ``asyncio.Event`` registered with :meth:`Wakeup.watch`
that every notify sets (a push stream: a hundred of them are woken by each commit, so notify hands each
event loop ONE callback that sets all of its events, not one cross-thread call per waiter).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()
        self._watchers: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}
        self.generation = 0  # notifications so far: a waiter that saw it change need not wait

    def watch(self, event: asyncio.Event) -> None:
        """Set ``event`` at every notify until :meth:`unwatch` (call from the loop that waits on it)."""
        with self._lock:
            self._watchers[event] = asyncio.get_running_loop()

    def unwatch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._watchers.pop(event, None)

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, set()
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None] | asyncio.Event]] = {}
            for future in waiters:
                by_loop.setdefault(future.get_loop(), []).append(future)
            for event, loop in self._watchers.items():
                by_loop.setdefault(loop, []).append(event)
        running = _running_loop()
        for loop, woken in by_loop.items():
            try:
                if loop is running:
                    _wake(woken)
                else:
                    loop.call_soon_threadsafe(_wake, woken)
            except RuntimeError:  # its loop closed: nobody waits any more
                pass

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation moves past ``seen`` (at most ``timeout`` s); returns the generation."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self.generation != seen:
                return self.generation
            self._waiters.add(future)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(future)
        return self.generation


def _wake(woken: Iterable[asyncio.Future[None] | asyncio.Event]) -> None:
    for item in woken:
        if isinstance(item, asyncio.Event):
            item.set()
        elif not item.done():
            item.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
