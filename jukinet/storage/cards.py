"""Residents' My Number cards as a node keeps them: by card serial, and the cards of each resident.

The CS holds the authoritative records (state, certificates) and answers "whose card is this?"
(:meth:`CardStore.holder_of`) for the services that accept a presented card (特例転入, 広域交付); the
national server keeps the same records as an index (which cards to revoke when a resident's card face
changes or they die); the card-management service keeps each card's state. This module only reads and
writes; the lifecycle rules are in jukinet.domain.card_lifecycle.
"""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, card_key, card_of_resident_key, cards_of_resident_prefix
from jukinet.v1 import cards_pb2


class CardStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.CARDS]
        self._by_resident = env.dbs[Db.CARDS_BY_RESIDENT]

    def current(self, txn: lmdb.Transaction, card_serial: str) -> cards_pb2.CardRecord | None:
        raw = txn.get(card_key(card_serial), db=self._db)
        return cards_pb2.CardRecord.FromString(raw) if raw is not None else None

    def put(self, txn: lmdb.Transaction, card: cards_pb2.CardRecord) -> None:
        """Store ``card`` (a new one or its new state); a card never changes holder."""
        txn.put(card_key(card.card_serial), card.SerializeToString(), db=self._db)
        txn.put(card_of_resident_key(card.resident_code, card.card_serial), b"", db=self._by_resident)

    def of_resident(self, txn: lmdb.Transaction, resident_code: str) -> list[cards_pb2.CardRecord]:
        """The resident's cards, in card serial order."""
        prefix = cards_of_resident_prefix(resident_code)
        serials = []
        with txn.cursor(db=self._by_resident) as cursor:
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    serials.append(key[len(prefix) :].decode("ascii"))
        return [c for c in (self.current(txn, s) for s in serials) if c is not None]

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> int:
        """住民票コード変更: the resident's cards are listed, and name their holder, under ``new_code``."""
        cards = self.of_resident(txn, old_code)
        for card in cards:
            txn.delete(card_of_resident_key(old_code, card.card_serial), db=self._by_resident)
            card.resident_code = new_code
            self.put(txn, card)
        return len(cards)

    def holder_of(self, card_serial: str) -> cards_pb2.CardRecord | None:
        """The card (its holder's resident code and its state), or None if this node does not know it."""
        with self._env.read() as txn:
            return self.current(txn, card_serial)

    def cards_of(self, resident_code: str) -> list[cards_pb2.CardRecord]:
        """The cards of a resident, with their states."""
        with self._env.read() as txn:
            return self.of_resident(txn, resident_code)
