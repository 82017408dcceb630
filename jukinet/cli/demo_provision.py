"""The demo's agency steps of issue 9: a four-item search, a batch query (定期照会) and push notices."""

from __future__ import annotations

from collections.abc import Callable

from jukinet.cli.views import describe
from jukinet.clients.agency import AgencyClient
from jukinet.v1 import identity_pb2, provision_pb2

Say = Callable[[str], None]


def _as_typed(kana: str) -> str:
    """The reading as an agency might hold it: hiragana, with an ideographic space where the record has none."""
    hiragana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kana)
    return hiragana.replace(" ", "\u3000")


def four_item_search(client: AgencyClient, business: str, person: identity_pb2.IdentityRecord, say: Say) -> int:
    """Search by reading (typed differently from the record: hiragana, an ideographic space) + birth date +
    sex: the answer names every candidate and how each item matched, never a guess."""
    typed = _as_typed(person.name.kana)
    answer = client.search(business, person.birth_date, person.sex, kana=typed)
    say(f"   kana '{typed}' + born {person.birth_date.year}-{person.birth_date.month:02d}-"
        f"{person.birth_date.day:02d} + sex: {len(answer.candidates)} candidate(s) ({answer.search_id})")  # fmt: skip
    if not answer.candidates:
        say("   UNEXPECTED: the resident was not found")
        return 1
    for c in answer.candidates:
        folds = ", ".join(
            provision_pb2.Normalisation.Name(n).removeprefix("NORMALISATION_").lower() for n in c.kana.normalisations
        )
        kana = provision_pb2.ItemMatch.Name(c.kana.match).removeprefix("ITEM_MATCH_").lower()
        say(f"   candidate provision #{c.provision_id}: {describe(c.record)}; kana {kana} ({folds})")
    return 0
