"""National numbers as stored: designations of 住民票コード, the national server's My Number register, and
a CS's reserve of designated codes. Reads and writes only; how numbers are made and who may use them is
:mod:`jukinet.domain.numbers`, and the national server's allocation is
:mod:`jukinet.server.national.numbers`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    HELD,
    RETIRED,
    Db,
    designation,
    from_u64,
    issued_number,
    my_number_key,
    number_request_key,
    parse_designation,
    parse_issued_number,
    resident_key,
    u64,
    unused_codes_key,
)


class Designations:
    """Which CS each 住民票コード was designated to (national: every code ever; prefecture: learned)."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.DESIGNATIONS]

    def of(self, txn: lmdb.Transaction, resident_code: str) -> tuple[str, int] | None:
        """(CS node id, block) the code was designated to, or None."""
        raw = txn.get(resident_key(resident_code), db=self._db)
        return parse_designation(raw) if raw is not None else None

    def put(self, txn: lmdb.Transaction, resident_code: str, cs: str, block: int) -> bool:
        """Record a designation; False (and nothing written) if the code was designated before."""
        return bool(txn.put(resident_key(resident_code), designation(cs, block), db=self._db, overwrite=False))

    def count(self) -> int:
        return self._env.entries(Db.DESIGNATIONS)

    # national: how many codes designated to each CS have no record yet (the DesignateCodes quota)
    def unused(self, txn: lmdb.Transaction, cs: str) -> int:
        """Codes designated to ``cs`` (since this count was kept) that no notice has used yet."""
        raw = txn.get(unused_codes_key(cs), db=self._env.dbs[Db.COUNTERS])
        return from_u64(raw) if raw is not None else 0

    def add_unused(self, txn: lmdb.Transaction, cs: str, delta: int) -> None:
        """Count ``delta`` more (designated) or fewer (a code's first record stored) unused codes of ``cs``."""
        txn.put(unused_codes_key(cs), u64(max(0, self.unused(txn, cs) + delta)), db=self._env.dbs[Db.COUNTERS])


class NumberRegister:
    """The national server's register: blocks issued, request ids answered, My Numbers held and retired."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._blocks = env.dbs[Db.CODE_BLOCKS]
        self._requests = env.dbs[Db.NUMBER_REQUESTS]
        self._numbers = env.dbs[Db.MY_NUMBERS]
        self._issued = env.dbs[Db.ISSUED_NUMBERS]
        self._changes = env.dbs[Db.CODE_CHANGES]
        self._replaces = env.dbs[Db.CODE_REPLACES]

    # blocks and request ids
    def block(self, txn: lmdb.Transaction, block: int) -> bytes | None:
        raw = txn.get(u64(block), db=self._blocks)
        return bytes(raw) if raw is not None else None

    def put_block(self, txn: lmdb.Transaction, block: int, payload: bytes) -> None:
        txn.put(u64(block), payload, db=self._blocks)

    def blocks(self, txn: lmdb.Transaction) -> Iterator[bytes]:
        """Every block designated, serialized CodeBlock payloads in block order."""
        with txn.cursor(db=self._blocks) as cursor:
            for _, value in cursor:
                yield bytes(value)

    def answered(self, txn: lmdb.Transaction, cs: str, request_id: str) -> int | None:
        """The block a request id of ``cs`` was answered with, or None."""
        raw = txn.get(number_request_key(cs, request_id), db=self._requests)
        return from_u64(raw) if raw is not None else None

    def answer(self, txn: lmdb.Transaction, cs: str, request_id: str, block: int) -> None:
        txn.put(number_request_key(cs, request_id), u64(block), db=self._requests)

    # My Numbers
    def number_of(self, txn: lmdb.Transaction, resident_code: str) -> str | None:
        """The My Number the code holds now, or None."""
        raw = txn.get(resident_key(resident_code), db=self._numbers)
        return bytes(raw).decode("ascii") if raw is not None else None

    def issued(self, txn: lmdb.Transaction, my_number: str) -> tuple[str, bytes] | None:
        """(code, HELD or RETIRED) of a number ever issued, or None."""
        raw = txn.get(my_number_key(my_number), db=self._issued)
        return parse_issued_number(raw) if raw is not None else None

    def hold(self, txn: lmdb.Transaction, resident_code: str, my_number: str) -> None:
        """``resident_code`` holds ``my_number`` (the caller checked it was never issued to another code)."""
        txn.put(resident_key(resident_code), my_number.encode("ascii"), db=self._numbers)
        txn.put(my_number_key(my_number), issued_number(resident_code, HELD), db=self._issued)

    def retire(self, txn: lmdb.Transaction, resident_code: str, my_number: str) -> None:
        """``my_number`` is never issued again; the code holds none until it gets a new one."""
        txn.delete(resident_key(resident_code), db=self._numbers)
        txn.put(my_number_key(my_number), issued_number(resident_code, RETIRED), db=self._issued)

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> str | None:
        """住民票コード変更 (national): the number of ``old_code`` (if any) is held by ``new_code`` from now on."""
        self.link_change(txn, old_code, new_code)
        number = self.number_of(txn, old_code)
        if number is not None:
            txn.delete(resident_key(old_code), db=self._numbers)
            self.hold(txn, new_code, number)
        return number

    def link_change(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> None:
        """Record that ``new_code`` replaces ``old_code`` (both ways; writing the same link again is a no-op)."""
        txn.put(resident_key(old_code), resident_key(new_code), db=self._changes)
        txn.put(resident_key(new_code), resident_key(old_code), db=self._replaces)

    def replaced_by(self, txn: lmdb.Transaction, old_code: str) -> str | None:
        """The code that replaces ``old_code`` (住民票コード変更), or None."""
        raw = txn.get(resident_key(old_code), db=self._changes)
        return bytes(raw).decode("ascii") if raw is not None else None

    def replaces(self, txn: lmdb.Transaction, new_code: str) -> str | None:
        """The code ``new_code`` was designated to replace, or None (an ordinary designation)."""
        raw = txn.get(resident_key(new_code), db=self._replaces)
        return bytes(raw).decode("ascii") if raw is not None else None

    def mark_retired(self, txn: lmdb.Transaction, resident_code: str, my_number: str) -> None:
        """A tier above the CS learns from a 個人番号変更 notice that ``my_number`` is retired (the national
        server retired it already; a prefecture keeps it so that it refuses the number for anyone)."""
        txn.put(my_number_key(my_number), issued_number(resident_code, RETIRED), db=self._issued)

    def issued_numbers(self) -> Iterator[tuple[str, str, bytes]]:
        """(number, code, state) of every number ever issued, in number order (read in one snapshot)."""
        with self._env.read() as txn:
            for key, value in txn.cursor(db=self._issued):
                code, state = parse_issued_number(value)
                yield bytes(key).decode("ascii"), code, state

    def count_issued(self) -> int:
        return self._env.entries(Db.ISSUED_NUMBERS)


class CodeReserve:
    """A CS's designated, unused 住民票コード, its records still waiting for their My Number, and which
    resident each row that left its code empty created (so the same row sent again creates nobody)."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._reserve = env.dbs[Db.CODE_RESERVE]
        self._pending = env.dbs[Db.PENDING_NUMBERS]
        self._created = env.dbs[Db.CREATED_ROWS]

    def add(self, txn: lmdb.Transaction, codes: Iterable[str], block: int) -> int:
        """Put designated codes in the reserve; returns how many were new."""
        value = u64(block)
        return sum(bool(txn.put(resident_key(c), value, db=self._reserve, overwrite=False)) for c in codes)

    def holds(self, txn: lmdb.Transaction, resident_code: str) -> bool:
        return txn.get(resident_key(resident_code), db=self._reserve) is not None

    def take(self, txn: lmdb.Transaction, resident_code: str) -> bool:
        """Use a reserved code (it leaves the reserve for good); False if it was not there."""
        return bool(txn.delete(resident_key(resident_code), db=self._reserve))

    def first(self, limit: int, skip: frozenset[str] = frozenset()) -> list[str]:
        """Up to ``limit`` reserved codes (in key order, i.e. random), not in ``skip``."""
        out: list[str] = []
        with self._env.read() as txn:
            for key in txn.cursor(db=self._reserve).iternext(values=False):
                code = bytes(key).decode("ascii")
                if code not in skip:
                    out.append(code)
                    if len(out) >= limit:
                        break
        return out

    def size(self) -> int:
        return self._env.entries(Db.CODE_RESERVE)

    # records stored before the national server assigned their My Number
    def await_number(self, txn: lmdb.Transaction, resident_code: str) -> None:
        txn.put(resident_key(resident_code), b"", db=self._pending)

    def numbered(self, txn: lmdb.Transaction, resident_code: str) -> None:
        txn.delete(resident_key(resident_code), db=self._pending)

    def is_awaiting(self, txn: lmdb.Transaction, resident_code: str) -> bool:
        return txn.get(resident_key(resident_code), db=self._pending) is not None

    def awaiting(self, limit: int) -> list[str]:
        with self._env.read() as txn:
            out = []
            for key in txn.cursor(db=self._pending).iternext(values=False):
                out.append(bytes(key).decode("ascii"))
                if len(out) >= limit:
                    break
            return out

    # rows that left resident_code empty, by digest (jukinet.cs_node.registry.row_digest)
    def created_by(self, txn: lmdb.Transaction, digest: bytes) -> str | None:
        """The resident code a row with this digest created here, or None."""
        raw = txn.get(digest, db=self._created)
        return bytes(raw).decode("ascii") if raw is not None else None

    def created(self, txn: lmdb.Transaction, digest: bytes, resident_code: str) -> None:
        txn.put(digest, resident_key(resident_code), db=self._created)
