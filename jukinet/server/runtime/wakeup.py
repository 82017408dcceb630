"""Wake coroutines when something was committed: no polling loop that costs CPU while nothing happens.

The write path calls :meth:`Wakeup.notify` (from any thread, or the event loop) after a commit; each
waiter awaits :meth:`Wakeup.wait`, which returns at the next notify or after its timeout.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()
        self.generation = 0  # notifications so far: a waiter that saw it change need not wait

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, set()
        for future in waiters:
            loop = future.get_loop()
            try:
                if loop is _running_loop():
                    _wake(future)
                else:
                    loop.call_soon_threadsafe(_wake, future)
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
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(future)
        return self.generation


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
