"""PKCS#11 token access: keys that sign records, notices, sessions and logs never leave the token.

SoftHSM is the token in development and tests. All token calls of a process run on one owner thread
(jukinet.hsm.owner); TokenSigner is the interface other threads use.
"""

from jukinet.hsm.errors import HsmError
from jukinet.hsm.keys import key_id_of, provision_aes_key, provision_signing_key
from jukinet.hsm.signer import TokenSigner
from jukinet.hsm.softhsm import SoftHsmConfig, find_softhsm_module

__all__ = [
    "HsmError",
    "SoftHsmConfig",
    "TokenSigner",
    "find_softhsm_module",
    "key_id_of",
    "provision_aes_key",
    "provision_signing_key",
]

from jukinet.hsm.card import (
    MAX_PIN_FAILURES,
    CardError,
    CardLocked,
    CardStatus,
    OperatorCard,
    UnlockedCard,
    WrongPin,
    admin_unlock,
    create_card,
    generate_card_key,
    store_card_certificate,
)

__all__ += [
    "MAX_PIN_FAILURES",
    "CardError",
    "CardLocked",
    "CardStatus",
    "OperatorCard",
    "UnlockedCard",
    "WrongPin",
    "admin_unlock",
    "create_card",
    "generate_card_key",
    "store_card_certificate",
]
