"""Wake coroutines when something was committed: no polling loop that costs CPU while nothing happens.

The write path calls :meth:`Wakeup.notify` (from any thread, or the event loop) after a commit; a waiter
keeps an ``asyncio.Event`` registered with :meth:`Wakeup.watch`, which every notify sets. A hundred push
streams are woken by each commit, so notify hands each event loop ONE callback that sets all of its
events, not one cross-thread call per waiter.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    def watch(self, event: asyncio.Event) -> None:
        """Set ``event`` at every notify until :meth:`unwatch` (call from the loop that waits on it)."""
        with self._lock:
            self._watchers[event] = asyncio.get_running_loop()

    def unwatch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._watchers.pop(event, None)

    def notify(self) -> None:
        with self._lock:
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Event]] = {}
            for event, loop in self._watchers.items():
                by_loop.setdefault(loop, []).append(event)
        running = _running_loop()
        for loop, events in by_loop.items():
            try:
                if loop is running:
                    _set_all(events)
                else:
                    loop.call_soon_threadsafe(_set_all, events)
            except RuntimeError:  # its loop closed: nobody waits any more
                pass


def _set_all(events: Iterable[asyncio.Event]) -> None:
    for event in events:
        event.set()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
