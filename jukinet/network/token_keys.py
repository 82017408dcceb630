"""Child-process entry: generate each token's non-extractable keys and print the signing public keys.

Each node token gets an EC P-256 signing key and an AES-256 key for biometric templates.

Reads ``{"token label": "user PIN", ...}`` as JSON on stdin, uses SOFTHSM2_CONF from the
environment, prints ``{"token label": "public key PEM", ...}``. Run by jukinet.network.provision.
"""

from __future__ import annotations

import json
import sys

from cryptography.hazmat.primitives import serialization

from jukinet.hsm import find_softhsm_module, provision_aes_key, provision_signing_key


def main() -> int:
    pins: dict[str, str] = json.load(sys.stdin)
    module = find_softhsm_module()
    out = {}
    for label, pin in pins.items():
        public_key = provision_signing_key(module, label, pin, "signing")
        provision_aes_key(module, label, pin, "template-key")  # encrypts operators' biometric templates
        out[label] = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
