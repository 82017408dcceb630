"""Wakeup: what a commit wakes (push streams watch it; a hundred of them are woken by every commit)."""

from __future__ import annotations

import asyncio
import threading

from jukinet.server.runtime.wakeup import Wakeup


def test_a_notify_from_another_thread_wakes_every_watcher_with_one_call_per_loop() -> None:
    wakeup = Wakeup()

    async def scenario() -> tuple[list[bool], int, bool]:
        loop = asyncio.get_running_loop()
        calls = 0
        real = loop.call_soon_threadsafe

        def counting(*args, **kwargs):
            nonlocal calls
            calls += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        events = [asyncio.Event() for _ in range(100)]
        for event in events:
            wakeup.watch(event)
        gone = asyncio.Event()
        wakeup.watch(gone)
        wakeup.unwatch(gone)
        thread = threading.Thread(target=wakeup.notify)
        thread.start()
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 5.0)
        thread.join()
        return [e.is_set() for e in events], calls, gone.is_set()

    woken, calls, gone = asyncio.run(scenario())
    assert all(woken) and calls == 1 and not gone
