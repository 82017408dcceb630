"""PKCS#11 token access: keys that sign records, notices, sessions and logs never leave the token.

A process's entry point creates its one TokenWorker (the thread every token call of the process runs
on) and passes it to TokenSigner, the provisioning functions and the operator card API. SoftHSM is the
token in development and tests. Every failure is a TokenError; branch on its ``reason``.
"""

from jukinet.hsm.card import (
    MAX_PIN_FAILURES,
    CardStatus,
    OperatorCard,
    UnlockedCard,
    admin_unlock,
    create_card,
    generate_card_key,
    store_card_certificate,
)
from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import (
    AGENCY_IDENTIFIER_KEY_LABEL,
    MY_NUMBER_KEY_LABEL,
    key_id_of,
    provision_aes_key,
    provision_hmac_key,
    provision_signing_key,
)
from jukinet.hsm.mac import TokenMac
from jukinet.hsm.signer import TokenSigner
from jukinet.hsm.softhsm import SoftHsmConfig, find_softhsm_module
from jukinet.hsm.tokens import init_token
from jukinet.hsm.worker import TokenWorker

__all__ = [
    "AGENCY_IDENTIFIER_KEY_LABEL",
    "MAX_PIN_FAILURES",
    "MY_NUMBER_KEY_LABEL",
    "CardStatus",
    "OperatorCard",
    "SoftHsmConfig",
    "TokenError",
    "TokenFailure",
    "TokenMac",
    "TokenSigner",
    "TokenWorker",
    "UnlockedCard",
    "admin_unlock",
    "create_card",
    "find_softhsm_module",
    "generate_card_key",
    "init_token",
    "key_id_of",
    "provision_aes_key",
    "provision_hmac_key",
    "provision_signing_key",
    "store_card_certificate",
]
