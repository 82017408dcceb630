"""Agency and terminal systems depend on the wire contract: importing the clients loads no storage,
token, PKI or server code (and so does not need LMDB or a PKCS#11 library installed)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_clients_import_without_storage_token_or_server_code():
    probe = (
        "import json, sys, jukinet.clients, jukinet.clients.transport; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('jukinet', 'lmdb', 'pkcs11'))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)  # fmt: skip
    forbidden = ("lmdb", "pkcs11", "jukinet.server", "jukinet.storage", "jukinet.hsm", "jukinet.pki",
                 "jukinet.devnet", "jukinet.cs_node")  # fmt: skip
    assert [m for m in loaded if m.startswith(forbidden)] == []
    assert "jukinet.clients.terminal" in loaded and "jukinet.v1.operator_pb2" in loaded
