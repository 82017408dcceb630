"""Child-process entry: generate each token's non-extractable signing key and print the public keys.

Reads ``{"token label": "user PIN", ...}`` as JSON on stdin, uses SOFTHSM2_CONF from the
environment, prints ``{"token label": "public key PEM", ...}``. Run by jukinet.network.provision.
"""

from __future__ import annotations

import json
import sys

from cryptography.hazmat.primitives import serialization

from jukinet.hsm import find_softhsm_module, provision_signing_key


def main() -> int:
    pins: dict[str, str] = json.load(sys.stdin)
    module = find_softhsm_module()
    out = {}
    for label, pin in pins.items():
        public_key = provision_signing_key(module, label, pin, "signing")
        out[label] = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
