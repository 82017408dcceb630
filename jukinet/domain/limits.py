"""Every bound on what a caller can send, in one table.

docs/LIMITS.md is this table in prose; ``tests/test_limits.py`` fails when the two disagree. The
sizes nest, so that the largest valid thing always fits the container it travels in:

    text field (characters) → record (encoded bytes) → change notice → origin batch → link batch
    → Deliver message,

and every RPC's request has a byte limit of its own, checked before the message is parsed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from jukinet.domain.errors import Problem, Rejected

KIB = 1 << 10
MIB = 1 << 20


class Repertoire(Enum):
    """Which characters a text field may hold (see :func:`text_problem`)."""

    NAME = "name"  # letters of any script, combining marks, and the punctuation names are written with
    KANA = "kana"  # hiragana, katakana (also half-width), their marks, spaces
    ADDRESS = "address"  # a name's repertoire plus digits and the punctuation of addresses


@dataclass(frozen=True)
class TextLimit:
    field: str
    max_chars: int
    repertoire: Repertoire
    required: bool
    meaning: str


TEXT_LIMITS: dict[str, TextLimit] = {
    t.field: t
    for t in (
        TextLimit("name.kanji", 100, Repertoire.NAME, True, "氏名 as written"),
        TextLimit("name.kana", 200, Repertoire.KANA, True, "reading of the name"),
        TextLimit("name.former_surname", 50, Repertoire.NAME, False, "旧氏"),
        TextLimit("name.alias", 100, Repertoire.NAME, False, "通称"),
        TextLimit("address.text", 200, Repertoire.ADDRESS, True, "address below the municipality"),
    )
}

# Local-only items of a resident (LocalResidentData, CS only; never in a notice). All optional.
LOCAL_TEXT_LIMITS: dict[str, TextLimit] = {
    t.field: t
    for t in (
        TextLimit("local.head_of_household", 100, Repertoire.NAME, False, "世帯主"),
        TextLimit("local.relationship", 20, Repertoire.NAME, False, "続柄"),
        TextLimit("local.registered_domicile", 200, Repertoire.ADDRESS, False, "本籍"),
        TextLimit("local.head_of_family_register", 100, Repertoire.NAME, False, "筆頭者"),
    )
}

# Four-item search (４情報検索, SearchByFourItems at the national server): the query's text items (each
# optional, but name or kana is required), and what one search may provide.
SEARCH_TEXT_LIMITS: dict[str, TextLimit] = {
    t.field: t
    for t in (
        TextLimit("name", 100, Repertoire.NAME, False, "氏名 as the agency holds it"),
        TextLimit("kana", 200, Repertoire.KANA, False, "its reading"),
        TextLimit("address_text", 200, Repertoire.ADDRESS, False, "address below the municipality, or its start"),
    )
}
MAX_SEARCH_CANDIDATES = 10  # more people than this match: refused (FAILED_PRECONDITION), "add the address"
MAX_SEARCH_MATCHES_READ = 1000  # index entries a search reads per name key; more: refused without reading on
SEARCH_REBUILD_CHUNK = 2000  # records indexed per write transaction when the search index is (re)built

# Encoded sizes. The largest valid record is about 3.3 KiB (every text field full of 4-byte characters);
# unknown fields count, so padding a record does not get it through.
MAX_RECORD_BYTES = 4 * KIB
MAX_NOTICE_BYTES = 6 * KIB  # a ChangeNotice: a record and its origin, position, dates
MAX_ORIGIN_BATCH_BYTES = 1 * MIB  # a LinkBatch of a node's own items (what a CS signs)
LINK_BATCH_BYTES = 192 * KIB
"""What a sender packs into one batch of its own items (a receiver accepts up to MAX_ORIGIN_BATCH_BYTES): the
national server applies a CS's batch, relayed whole, in ONE write transaction, and every other write —
a push delivery's provision entries, a designation — waits behind it. 192 KiB is about 550 change notices:
a few hundred milliseconds of intake under full load, where a 1 MiB batch held the writer for over a
second. Throughput is kept by the window (LINK_WINDOW), not by the size of a batch."""
LINK_WINDOW = 16  # batches in flight per link (a receiver checks the next while one commits)
MAX_LINK_BATCH_BYTES = 2 * MIB  # any LinkBatch: a relayed origin batch with its signature still fits
MAX_BATCH_ITEMS = 5000
MAX_ENVELOPE_OVERHEAD = 16 * KIB  # signature, key id, payload type and the signer's certificate
MAX_RECORDS_PER_CHUNK = 1000  # RegisterResidents: records per request message
MAX_LOCAL_DATA_BYTES = 2 * KIB  # a LocalResidentData (the largest valid one is about 1.7 KiB)
MAX_MOVE_MEMBERS = 20  # residents moving together in one 転出 (one grant; the grant rides on each 転入 notice)
# a Signed MoveOutCertificate: 20 members of the largest size ≈ 120 KiB, plus each member's DV support
# measures (16 of 64 municipalities each ≈ 9 KiB a member, 180 KiB in all)
MAX_MOVE_CERTIFICATE_BYTES = 512 * KIB
# What one origin CS can make a destination CS hold: received 転出証明書情報 (deleted once their window
# closes, 44 days after the planned date). A busy pair of municipalities exchanges a few hundred a month.
MAX_HELD_PER_ORIGIN = 2000
MAX_HELD_PER_ORIGIN_BYTES = 16 * MIB
MAX_PROBLEM_CHARS = 200  # RegisterResidents: each problem of a refused row, as answered (the answer stays small)
MAX_DIRECTORY_BYTES = 2 * MIB  # an encoded NetworkDirectory (every node of the country fits in a tenth of it)
MAX_DIRECTORY_NODES = 4096  # node processes in a directory (1,741 CS, 47 prefectures, the national server)
MAX_DIRECTORY_ROWS = 100_000  # legal-table rows and code-block summaries together
MAX_COPY_REQUEST_BYTES = 1 * KIB  # 広域交付: an encoded CopyRequest (ids, a code, a time, a nonce of ≤ 64 bytes)
MAX_CARD_PRESENTATION_BYTES = 8 * KIB  # a resident card's presentation (its certificate and signature)
MAX_CERTIFIED_COPY_BYTES = 8 * KIB  # an encoded CertifiedCopy: a record's items and the household items
# Push subscriptions (national server; jukinet/server/national/push.py)
MAX_SUBSCRIPTIONS_PER_AGENCY = 64  # subscriptions one agency holds (all its businesses)
MAX_SUBSCRIPTION_ID_CHARS = 64  # subscription ids are "sub-<n>"; a longer one names none (NOT_FOUND)
MAX_TARGET_CODES = 10_000  # 住民票コード in one subscription's target list
MAX_TARGET_MUNICIPALITIES = 64  # municipality codes in one subscription's rule
MAX_PUSH_AGE = 150  # the largest age a cohort subscription may name
MAX_PUSH_RECORDS = 500  # records in one pushed message (each at most a record, so a message stays < 2.1 MiB)
PUSH_MAILBOX_ENTRIES = 4000  # entries matched for one stream, not yet taken; beyond, it reads the feed itself
PUSH_WINDOW = 8  # pushed messages a subscription may have unacknowledged; then the server waits
PUSH_SCAN = 2000  # feed positions one read of a delivery step covers
PUSH_READS_PER_STEP = 16  # reads one step makes through others' changes before it lets other streams run
FEED_CACHE_ENTRIES = 20_000  # decoded feed entries shared by the streams (a bounded cache)
MAX_DIGEST_RESIDENTS = 20_000  # residents one daily digest holds; beyond, the day is sent in parts
# Batch queries (定期照会, BatchLookup): codes per chunk (its answer of 1,000 largest records still fits
# MAX_RESPONSE_BYTES), chunks read and not yet answered per stream, streams open at once.
MAX_BATCH_CHUNK_CODES = 1000
MAX_BATCH_REQUEST_BYTES = 40 * KIB  # one chunk: 1,000 agency identifiers of 34 encoded bytes, a business code, an id
MAX_BATCH_IN_FLIGHT = 16
MAX_BATCH_STREAMS_PER_AGENCY = 2
MAX_BATCH_STREAMS = 4  # all agencies together (each holds a bulk worker while it reads a chunk)
BATCH_IDLE_SECONDS = 30.0  # a batch stream sending no chunk (with room for one), or taking no answer, this long ends
MAX_DISCLOSURE_QUERY_BYTES = 256  # 開示: an encoded DisclosureQuery (a node id and three numbers)
MAX_DISCLOSURE_PAGE = 500  # 開示: entries per answer, each with its inclusion path (≤ 64 hashes): < 2 MiB
DEFAULT_DISCLOSURE_PAGE = 100
DISCLOSURES_PER_MINUTE_PER_CALLER = 600  # 開示: requests one caller (a portal, a CS, an operator) may make
DISCLOSURES_PER_MINUTE_PER_RESIDENT = 60  # 開示: requests for one resident (one card, one 住民票コード)
DISCLOSURES_PER_MINUTE_PER_PORTAL = 60_000  # 開示: verified ListMine one portal relays (national traffic: 1,000/s)
DISCLOSURE_FAILURES_PER_MINUTE_PER_CALLER = 600  # 開示: presentations of one portal that fail to verify
# The movement report (national): rows of municipality flows and of municipalities in one answer (each list
# cut there, and the answer says so; totals and prefecture flows are never cut), and the change-feed entries
# the follower counts per step (one short write transaction, riding on the ingest's group commit).
MAX_REPORT_ROWS = 10_000
MAX_FOLLOW_CHUNK = 1_000
AGENCY_IDENTIFIER_MACS_PER_JOB = 1000  # 機関別符号: MACs per token-worker job (a larger call is cut into jobs)
MAX_CODE_CHANGES = 16  # 住民票コード変更 links followed from a code to its first or current code

# Request bytes per RPC (full method name); every other RPC gets MAX_UNARY_REQUEST_BYTES.
MAX_UNARY_REQUEST_BYTES = 64 * KIB
REQUEST_LIMITS: dict[str, int] = {
    "/jukinet.v1.LinkService/Deliver": MAX_LINK_BATCH_BYTES + MAX_ENVELOPE_OVERHEAD,
    "/jukinet.v1.ResidentRegistryService/RegisterResidents": MAX_RECORDS_PER_CHUNK
    * (MAX_RECORD_BYTES + MAX_LOCAL_DATA_BYTES)
    + 64 * KIB,
    "/jukinet.v1.ResidentRegistryService/RecordChange": MAX_RECORD_BYTES + MAX_LOCAL_DATA_BYTES + KIB,
    "/jukinet.v1.MoveService/MoveOut": 4 * KIB,
    "/jukinet.v1.MoveService/MoveIn": 16 * KIB,
    "/jukinet.v1.DirectoryPublishService/PublishDirectory": MAX_DIRECTORY_BYTES + 64 * KIB,
    "/jukinet.v1.CertifiedCopyService/RequestCopy": MAX_COPY_REQUEST_BYTES + MAX_CARD_PRESENTATION_BYTES,
    "/jukinet.v1.CertifiedCopyService/ListCopyIssuances": KIB,
    "/jukinet.v1.CopyExchangeService/IssueCopy": MAX_COPY_REQUEST_BYTES + MAX_CARD_PRESENTATION_BYTES,
    "/jukinet.v1.DisclosureService/GetTreeHead": 64,
    "/jukinet.v1.DisclosureService/ListMine": MAX_DISCLOSURE_QUERY_BYTES + MAX_CARD_PRESENTATION_BYTES + 64,
    "/jukinet.v1.DisclosureService/ListForResident": 512,  # a code, three numbers, an operator id
    "/jukinet.v1.DisclosureCounterService/ListProvisionsForResident": 512,
    "/jukinet.v1.DvMeasureService/RegisterDvMeasure": 4 * KIB,
    "/jukinet.v1.DvMeasureService/ListDvMeasures": KIB,
    "/jukinet.v1.DvMeasureService/RemoveDvMeasure": KIB,
    "/jukinet.v1.CardService/SetUpCard": 1 * KIB,  # a resident code, a card serial, two P-256 public keys
    "/jukinet.v1.CardService/ChangeCardState": 256,
    "/jukinet.v1.CardService/UpdateCardFace": 512,
    "/jukinet.v1.CardService/ListCards": 256,
    # NumberService (national; CS callers): 1,000 codes of 13 encoded bytes each, or one code and an id
    "/jukinet.v1.NumberService/DesignateCodes": KIB,
    "/jukinet.v1.NumberService/AssignMyNumbers": 16 * KIB,
    "/jukinet.v1.NumberService/ChangeMyNumber": KIB,
    "/jukinet.v1.NumberService/ChangeResidentCode": KIB,
    # SubscriptionService (national; agency callers): 10,000 codes of 13 encoded bytes each, and the rest
    "/jukinet.v1.SubscriptionService/Subscribe": 160 * KIB,
    "/jukinet.v1.SubscriptionService/Receive": 256,
    "/jukinet.v1.BatchLookupService/BatchLookup": MAX_BATCH_REQUEST_BYTES,
    # a business code, three text items of at most 200 characters (4 bytes each in UTF-8), a date, a code
    "/jukinet.v1.FourItemSearchService/SearchByFourItems": 4 * KIB,
    "/jukinet.v1.StatisticsService/GetMovementReport": 256,  # a month, "YYYY-MM"
    "/jukinet.v1.IdentityProvisionService/LookupByAgencyIdentifier": KIB,  # a business code and a 32-char identifier
}
MAX_REQUEST_BYTES = max(REQUEST_LIMITS.values())
"""The server's transport limit: no request larger than this is even buffered."""
MAX_RESPONSE_BYTES = 4 * MIB
"""Every response (a page of the audit log, a receipt, a record) is cut to fit this."""
MAX_AUDIT_ENTRY_BYTES = 8 * KIB
"""An encoded audit entry: its text fields are bounded and escaped (jukinet.domain.quoting), never raw input."""


def request_limit(method: str) -> int:
    return REQUEST_LIMITS.get(method, MAX_UNARY_REQUEST_BYTES)


# -- character repertoire --------------------------------------------------------------------------------

_LETTERS = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo"})
_MARKS = frozenset({"Mn", "Mc"})
_NAME_PUNCTUATION = frozenset(" \u3000・･-‐'’.,")
_ADDRESS_PUNCTUATION = _NAME_PUNCTUATION | frozenset("－−ー()（）/／#＃&＆")
_INVISIBLE_MARKS = frozenset({"\u034f"})  # combining grapheme joiner: a mark that shows nothing
_KANA_RANGES = ((0x3041, 0x3096), (0x3099, 0x309E), (0x30A1, 0x30FA), (0x30FB, 0x30FE), (0xFF65, 0xFF9F))


# The common case, decided by one regex: kanji, kana, Latin letters, digits (addresses), spaces, 丁目/番 style
# punctuation. Anything else is looked at character by character.
_LETTERS_COMMON = "\u3041-\u3096\u30a1-\u30fa\u30fc\u3005\u4e00-\u9fffA-Za-z \u3000"
_COMMON_NAME = re.compile(f"[{_LETTERS_COMMON}\u30fb]+")
_COMMON_ADDRESS = re.compile(f"[{_LETTERS_COMMON}0-9\uff10-\uff19\uff0d-]+")
_COMMON_KANA = re.compile("[\u3041-\u3096\u3099-\u309e\u30a1-\u30fa\u30fb-\u30fe\uff65-\uff9f\u3000 ]+")
_COMMON = {Repertoire.NAME: _COMMON_NAME, Repertoire.ADDRESS: _COMMON_ADDRESS, Repertoire.KANA: _COMMON_KANA}


def _is_kana(ch: str) -> bool:
    o = ord(ch)
    return ch in " \u3000" or any(lo <= o <= hi for lo, hi in _KANA_RANGES)


def _allowed(ch: str, repertoire: Repertoire, first: bool) -> bool:
    if repertoire is Repertoire.KANA:
        return _is_kana(ch)
    category = unicodedata.category(ch)
    if category in _LETTERS:
        return True
    if category in _MARKS:  # combining marks (voiced marks, accents, kanji variation selectors) follow something
        return not first and ch not in _INVISIBLE_MARKS
    if repertoire is Repertoire.ADDRESS:
        return category == "Nd" or ch in _ADDRESS_PUNCTUATION
    return ch in _NAME_PUNCTUATION


def describe_char(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character named so that an invisible one can be seen."""
    kind = _UNNAMED.get(unicodedata.category(ch), "unnamed character")
    return f"U+{ord(ch):04X} {unicodedata.name(ch, kind)}"


_UNNAMED = {
    "Cc": "control character",
    "Cf": "format character",
    "Cs": "surrogate",
    "Co": "private-use character",
    "Cn": "unassigned code point",
}


def text_problem(field: str, text: str, limit: TextLimit | None = None) -> str | None:
    """What is wrong with ``text`` as the value of ``field`` (None if nothing), naming the position (1-based)
    and the character. Control characters, NUL, bidi overrides, zero-width and other invisible formatting,
    surrogates, private-use and unassigned code points are outside every repertoire."""
    rule = limit or TEXT_LIMITS[field]
    if not text:
        return f"{field}: must not be empty" if rule.required else None
    if len(text) > rule.max_chars:
        return f"{field}: {len(text)} characters, at most {rule.max_chars} allowed"
    if not text.strip(" \u3000"):  # ASCII and ideographic spaces; other white space is named below
        return f"{field}: only spaces"
    if _COMMON[rule.repertoire].fullmatch(text):
        return None
    for i, ch in enumerate(text):
        if not _allowed(ch, rule.repertoire, i == 0):
            return f"{field}: character {i + 1} ({describe_char(ch)}) is not allowed in {rule.repertoire.value} text"
    return None


def require_text(field: str, text: str) -> None:
    problem = text_problem(field, text)
    if problem:
        raise Rejected(Problem.INVALID, problem)
