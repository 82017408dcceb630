"""Bugs the property-based tests (tests/properties/) found, pinned as fast regression tests: each input
used to end its RPC with INTERNAL (an exception below the edge) instead of a refusal or an answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import text_problem
from jukinet.server.login import OperatorAdministration
from jukinet.storage import NodeStorage


@pytest.fixture
def storage(tmp_path: Path):
    s = NodeStorage.open(tmp_path / "data")
    yield s
    s.close()


def test_provisions_after_the_last_uint64_id_are_none(storage: NodeStorage) -> None:
    # ListProvisions(after_id=2**64-1) packed after_id + 1 into 8 bytes: struct.error, INTERNAL.
    assert storage.provisions.page(2**64 - 1, 10) == []
    assert storage.provisions.page(2**64 - 2, 10) == []


@pytest.mark.parametrize("operator_id", ["", "o" * 600, "operator:131148:" + "a" * 600, "operator:999999:x"])
def test_operator_administration_refuses_malformed_ids_before_storage(storage: NodeStorage, operator_id: str) -> None:
    # GetOperator/UnlockOperator/RevokeSessions used the raw id as an LMDB key: an empty or 512+ byte key
    # raised lmdb.BadValsizeError (INTERNAL). The id is parsed first now; nothing else is reached.
    admin = OperatorAdministration(frozenset({"131148"}), storage, None, None, None)  # type: ignore[arg-type]
    for action in (admin.show, lambda i: admin.unlock(i, None), lambda i: admin.revoke_sessions(i, None)):
        with pytest.raises(Rejected) as exc:
            action(operator_id)
        assert exc.value.problem is Problem.INVALID and ("operator" in str(exc.value) or "node id" in str(exc.value))
    with pytest.raises(Rejected) as exc:
        admin.show("operator:131148:nobody")
    assert exc.value.problem is Problem.NOT_FOUND


@pytest.mark.parametrize(("text", "named"), [("\n", "U+000A"), (" \u2028", "U+2028"), ("\x85", "U+0085")])
def test_white_space_that_is_not_a_space_is_named(text: str, named: str) -> None:
    # A field of line breaks was refused as "only spaces"; it is named like any control character now.
    problem = text_problem("name.kanji", text)
    assert problem is not None and named in problem and "character" in problem
    assert text_problem("name.kanji", " \u3000") == "name.kanji: only spaces"
