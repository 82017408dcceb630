"""``jukinet node run``: one node process, from its configuration file, until SIGTERM or SIGINT.

The process creates its one token worker (it owns every PKCS#11 call of the process and is where the
SoftHSM configuration is chosen, before the library loads), assembles the node, and serves on an
asyncio event loop; on a signal it stops serving, stops its links and closes the token and the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from jukinet.hsm import TokenWorker
from jukinet.server.assembly import assemble
from jukinet.server.runtime.config import NodeConfig

log = logging.getLogger(__name__)


SWITCH_INTERVAL = 0.001  # seconds; CPython's default 5 ms lets bulk threads keep a short call waiting


def run_node(config_path: Path) -> int:
    config = NodeConfig.load(config_path)
    sys.setswitchinterval(SWITCH_INTERVAL)
    worker = TokenWorker(config.token_module, config.softhsm_dir / "softhsm2.conf")
    try:
        asyncio.run(_serve(config, worker))
    finally:
        worker.close()
    return 0


async def _serve(config: NodeConfig, worker: TokenWorker) -> None:
    node = assemble(config, worker)
    await node.start()
    print(f"{config.name} ready on {config.listen}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("%s stopping", config.name)
    await node.stop()
