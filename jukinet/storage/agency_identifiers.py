"""Agency identifiers (機関別符号) the national server has handed out, both ways: (agency, 住民票コード) →
identifier, and (agency, identifier) → the resident's first 住民票コード. Reads and writes only; the
derivation is :mod:`jukinet.server.national.agency_identifiers`'."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, agency_pair_key


class AgencyIdentifierStore:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self._ids = env.dbs[Db.AGENCY_IDS]
        self._codes = env.dbs[Db.AGENCY_ID_CODES]

    def identifier(self, txn: lmdb.Transaction, agency: str, resident_code: str) -> str | None:
        raw = txn.get(agency_pair_key(agency, resident_code), db=self._ids)
        return bytes(raw).decode("ascii") if raw is not None else None

    def code(self, txn: lmdb.Transaction, agency: str, identifier: str) -> str | None:
        raw = txn.get(agency_pair_key(agency, identifier), db=self._codes)
        return bytes(raw).decode("ascii") if raw is not None else None

    def put(self, txn: lmdb.Transaction, agency: str, resident_code: str, identifier: str, first_code: str) -> None:
        """``resident_code`` → ``identifier`` for ``agency``, and the identifier → ``first_code`` (the code
        the identifier was derived from: the resident's first, before any 住民票コード変更)."""
        txn.put(agency_pair_key(agency, resident_code), identifier.encode("ascii"), db=self._ids)
        txn.put(agency_pair_key(agency, identifier), first_code.encode("ascii"), db=self._codes)

    def count(self) -> int:
        return self.env.entries(Db.AGENCY_IDS)
