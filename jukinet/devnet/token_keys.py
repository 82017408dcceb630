"""Child-process entry: initialise each node token and generate its keys; print the signing public keys.

Each node token gets an EC P-256 signing key and an AES-256 key for biometric templates; the national
server's token also gets the HMAC keys My Numbers and agency identifiers are computed with
(``"my_number_key": true``, ``"agency_identifier_key": true``). It runs in a
child process because SoftHSM reads its configuration once per process, and the caller (a test run, a
benchmark) may already use another one. Tokens are initialised through PKCS#11 here
(jukinet.hsm.init_token), so the PINs reach no command line: they come on stdin.

Reads ``{"softhsm_conf": path, "tokens": {"token label": {"pin": "user PIN", "so_pin": "SO PIN",
"my_number_key": bool, "agency_identifier_key": bool}, ...}}``
as JSON on stdin, prints ``{"token label": "public key PEM", ...}``. Run by :mod:`jukinet.devnet.provision`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jukinet.hsm import (
    AGENCY_IDENTIFIER_KEY_LABEL,
    TokenWorker,
    find_softhsm_module,
    init_token,
    provision_aes_key,
    provision_hmac_key,
    provision_signing_key,
)
from jukinet.server.login import TEMPLATE_KEY_LABEL


def main() -> int:
    request = json.load(sys.stdin)
    worker = TokenWorker(find_softhsm_module(), Path(request["softhsm_conf"]))
    out = {}
    try:
        for label, pins in request["tokens"].items():
            init_token(worker, label, pins["pin"], pins["so_pin"])
            public_key = provision_signing_key(worker, label, pins["pin"], "signing")
            provision_aes_key(worker, label, pins["pin"], TEMPLATE_KEY_LABEL)  # encrypts operators' templates
            if pins.get("my_number_key"):
                provision_hmac_key(worker, label, pins["pin"])  # national only: computes My Numbers
            if pins.get("agency_identifier_key"):  # national only: computes agency identifiers (機関別符号)
                provision_hmac_key(worker, label, pins["pin"], AGENCY_IDENTIFIER_KEY_LABEL)
            out[label] = public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
    finally:
        worker.close()
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
