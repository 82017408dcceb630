"""Every key of a node's LMDB environment: the named databases and how each key is built.

Keys are ASCII codes, node ids, or 8-byte big-endian counters (so that LMDB's byte order is numeric
order). A composite key joins its parts with NUL, which no node id or code contains. Values are
serialized protobuf unless said otherwise.

==================  ===============================================  =======================================
database            key                                              value
==================  ===============================================  =======================================
records             住民票コード                                       IdentityRecord (latest state)
local_data          住民票コード                                       LocalResidentData (CS only)
move_outs           grant id                                         MoveOutState (CS: 転出 granted here)
moves_received      grant id                                         ReceivedMove (CS: 転出証明書情報 received)
move_out_members    住民票コード                                       grant id (CS: the latest 転出 granted for them)
moves_expiry        u32 last day (ordinal) ‖ grant id                u64 bytes held (CS: when a received one goes)
moves_held          origin CS node id                                u64 count ‖ u64 bytes (CS: received, held)
by_my_number        個人番号                                          住民票コード
history             u64 feed position                                ChangeNotice (never deleted; read by position)
history_index       住民票コード ‖ u64 feed position                   (empty: a resident's entries, in order)
queue               destination ‖ NUL ‖ u64 queue position             LinkItem (empty: withdrawn), until receipted
queue_state         destination                                      u64 last enqueued ‖ u64 last receipted
receipts            destination ‖ NUL ‖ u64 last position covered      Signed Receipt (proof of hand-over)
quarantine          destination ‖ NUL ‖ u64 queue position             QuarantinedItem (refused for good, set aside)
inbox               sender ‖ NUL ‖ destination                         u64 highest queue position stored
provision_leaves    u64 leaf index (provision id − 1)                ProvisionEntry (the provision log's leaves)
provision_nodes     u8 level ‖ u64 index (levels ≥ 4)                 SHA-256 of a perfect subtree
provision_heads     u64 tree size                                    Signed TreeHead (the provision log's)
provision_index     u32 segment ‖ 住民票コード ‖ u64 leaf index         (empty: a resident's provisions, written
                                                                     behind the log in sorted segments)
provision_index_state  "upto" | "seg:" ‖ u32 segment | "merge"       u64 leaves indexed | u8 level ‖ u64 keys ‖
                                                                     u64 state | the merge in progress
counters            counter name                                     u64 last value handed out
counters            "unused-codes" ‖ NUL ‖ CS node id                  u64 codes designated to the CS that no
                                                                     notice used yet (national: the quota)
operators           operator id                                      OperatorRecord
revoked_sessions    session id (16 bytes)                            u64 expiry, Unix ms
audit_leaves        u64 leaf index                                   AuditEntry (the leaf data)
audit_nodes         u8 level ‖ u64 index                              SHA-256 of a perfect subtree
audit_heads         u64 tree size                                    Signed TreeHead
directory           "current"                                        CachedDirectory (the last verified network
                                                                     directory envelope, its source, when stored)
directory           "seed_sha256"                                    SHA-256 of the seed file last published
                                                                     from (national server only; raw 32 bytes)
copy_issuance_leaves  u64 leaf index (copy serial − 1)               CopyIssuance (CS: the copy-issuance log's
                                                                     leaves, 広域交付)
copy_issuance_nodes   u8 level ‖ u64 index                           SHA-256 of a perfect subtree
copy_issuance_heads   u64 tree size                                  Signed TreeHead (the copy-issuance log's)
copy_issuance_index   住民票コード ‖ u64 leaf index                     (empty: a resident's copies, written in
                                                                     the issuance's transaction)
dv_measures         住民票コード ‖ u64 measure id                        DvMeasure (CS: DV support measures)
cards               card serial                                      CardRecord (CS, national, card service)
cards_by_resident   住民票コード ‖ NUL ‖ card serial                    (empty: a resident's cards)
designations        住民票コード                                       CS node id ‖ NUL ‖ u64 block (national: every
                                                                     code ever designated; prefecture: learned
                                                                     from the signed blocks its CS nodes queue)
code_blocks         u64 block number                                 CodeBlock, serialized (national: a retried
                                                                     request gets the same block, signed again)
number_requests     CS node id ‖ NUL ‖ request id                      u64 block number (national: idempotency)
my_numbers          住民票コード                                       個人番号 (national: the current assignment)
issued_numbers      個人番号                                          住民票コード ‖ state byte A (held) / R (retired)
                                                                     (national: every number ever issued)
code_changes        old 住民票コード                                   new 住民票コード (住民票コード変更; national: at
                                                                     ChangeResidentCode; prefecture: from the
                                                                     signed block; CS: when the change commits)
code_replaces       new 住民票コード                                   old 住民票コード (the same links, read the other
                                                                     way: a code that serves one change only)
code_reserve        住民票コード                                       u64 block number (CS: designated, unused)
pending_numbers     住民票コード                                       (empty: CS records awaiting their My Number)
created_rows        SHA-256 of a creating row as entered, without    住民票コード (CS: the resident that row created;
                    its numbers (registry.row_digest)                a row sent again is already stored)
feed_times          u64 first feed position of a commit              u64 national commit time, Unix ms (national:
                                                                     a position's time is its run's, found by
                                                                     the greatest key at or below it)
subscriptions       subscription id                                  Subscription (national: push notices; its
                                                                     cursor fields live in push_cursors)
subscriptions_by    agency node id ‖ NUL ‖ subscription id             (empty: an agency's subscriptions)
push_cursors        subscription id                                  u64 acknowledged ‖ u64 delivered (feed
                                                                     positions; written per message and ack)
push_cohorts        subscription id ‖ NUL ‖ u32 month (YYYYMM)         PushCohort (the month's members as of a
                                                                     snapshot, so a resend is the same)
search_names        SHA-256(folded 氏名)[:16] ‖ u16 year ‖ u8 month   (empty: national, the four-item search index;
                    ‖ u8 day ‖ u8 sex ‖ 住民票コード                    jukinet.domain.kana folds the name)
search_kana         the same, of the folded reading (フリガナ)         (empty: national, four-item search)
search_state        "built" / "building"                           fold version (SHA-256, 32 bytes), and for
                                                                     "building" the last 住民票コード indexed
movement_counts     month YYYYMM ‖ kind byte ‖ code a ‖ NUL ‖ code b   u64 count (national: the movement report's
                                                                     counters, jukinet.domain.statistics.Kind)
movement_cursor     "position"                                       u64 last history position counted (national)
movement_marks      住民票コード ‖ NUL ‖ kind byte (B birth, D death)    (empty: national, this resident's first birth /
                                                                     death is counted; written with the counters)
agency_ids          corporate number ‖ NUL ‖ 住民票コード               機関別符号 (national: the agency's identifier
                                                                     for the resident, computed once)
agency_id_codes     corporate number ‖ NUL ‖ 機関別符号                 住民票コード (national: the first code of the
                                                                     resident, followed through code_changes)
==================  ===============================================  =======================================
"""

from __future__ import annotations

import hashlib
import struct
from enum import StrEnum

WITHDRAWN = b""
"""The queue entry left at a position whose item went to quarantine (a LinkItem is never empty)."""

U64 = struct.Struct(">Q")
_AUDIT_NODE = struct.Struct(">BQ")
_QUEUE_STATE = struct.Struct(">QQ")
_DAY = struct.Struct(">I")
_SEP = b"\x00"


class Db(StrEnum):
    RECORDS = "records"
    LOCAL_DATA = "local_data"
    MOVE_OUTS = "move_outs"
    MOVES_RECEIVED = "moves_received"
    MOVE_OUT_MEMBERS = "move_out_members"
    MOVES_EXPIRY = "moves_expiry"
    MOVES_HELD = "moves_held"
    BY_MY_NUMBER = "by_my_number"
    HISTORY = "history"
    HISTORY_INDEX = "history_index"
    QUEUE = "queue"
    QUEUE_STATE = "queue_state"
    RECEIPTS = "receipts"
    QUARANTINE = "quarantine"
    INBOX = "inbox"
    PROVISION_LEAVES = "provision_leaves"
    PROVISION_NODES = "provision_nodes"
    PROVISION_HEADS = "provision_heads"
    PROVISION_INDEX = "provision_index"
    PROVISION_INDEX_STATE = "provision_index_state"
    COUNTERS = "counters"
    OPERATORS = "operators"
    REVOKED_SESSIONS = "revoked_sessions"
    AUDIT_LEAVES = "audit_leaves"
    AUDIT_NODES = "audit_nodes"
    AUDIT_HEADS = "audit_heads"
    DIRECTORY = "directory"
    COPY_ISSUANCE_LEAVES = "copy_issuance_leaves"
    COPY_ISSUANCE_NODES = "copy_issuance_nodes"
    COPY_ISSUANCE_HEADS = "copy_issuance_heads"
    COPY_ISSUANCE_INDEX = "copy_issuance_index"
    DV_MEASURES = "dv_measures"
    CARDS = "cards"
    CARDS_BY_RESIDENT = "cards_by_resident"
    DESIGNATIONS = "designations"
    CODE_BLOCKS = "code_blocks"
    NUMBER_REQUESTS = "number_requests"
    MY_NUMBERS = "my_numbers"
    ISSUED_NUMBERS = "issued_numbers"
    CODE_CHANGES = "code_changes"
    CODE_REPLACES = "code_replaces"
    CODE_RESERVE = "code_reserve"
    PENDING_NUMBERS = "pending_numbers"
    CREATED_ROWS = "created_rows"
    FEED_TIMES = "feed_times"
    SUBSCRIPTIONS = "subscriptions"
    SUBSCRIPTIONS_BY_AGENCY = "subscriptions_by"
    PUSH_CURSORS = "push_cursors"
    PUSH_COHORTS = "push_cohorts"
    SEARCH_NAMES = "search_names"
    SEARCH_KANA = "search_kana"
    SEARCH_STATE = "search_state"
    MOVEMENT_COUNTS = "movement_counts"
    MOVEMENT_CURSOR = "movement_cursor"
    MOVEMENT_MARKS = "movement_marks"
    AGENCY_IDS = "agency_ids"
    AGENCY_ID_CODES = "agency_id_codes"


ALL_DBS: tuple[str, ...] = tuple(d.value for d in Db)


class Counter(StrEnum):
    """Names of the counters in ``counters``."""

    HISTORY = "history"  # the last position handed out in the change-history feed
    CHANGE = "change"  # sequence of the next change notice this node originates
    MOVE_OUT = "move-out"  # number of the last 転出 grant this CS issued (grant id "<cs>/<n>")
    CODE_BLOCK = "code_block"  # number of the next block of 住民票コード designated (national)
    DV_MEASURE = "dv-measure"  # id of the last DV support measure registered here
    SUBSCRIPTION = "subscription"  # number of the last push subscription registered (national)
    SEARCH = "search"  # number of the last four-item search that provided something (national)


def u64(value: int) -> bytes:
    return U64.pack(value)


def from_u64(raw: bytes) -> int:
    return U64.unpack(raw)[0]


def resident_key(resident_code: str) -> bytes:
    return resident_code.encode("ascii")


def grant_key(grant_id: str) -> bytes:
    """A MoveOutGrant's id ("cs:131148/42"): ASCII, at most MAX_GRANT_ID_CHARS."""
    return grant_id.encode("ascii")


def move_expiry_key(last_day: int, grant_id: str) -> bytes:
    """A received 転出証明書情報 by the last day (date ordinal) it can serve a 転入: expired ones sort first."""
    return _DAY.pack(last_day) + grant_key(grant_id)


def parse_move_expiry_key(key: bytes) -> tuple[int, str]:
    return _DAY.unpack(key[:4])[0], bytes(key[4:]).decode("ascii")


def move_expiry_prefix(last_day: int) -> bytes:
    """Keys of certificates whose last day is before ``last_day`` sort before this."""
    return _DAY.pack(last_day)


def moves_held(count: int, size: int) -> bytes:
    return _QUEUE_STATE.pack(count, size)


def parse_moves_held(raw: bytes | None) -> tuple[int, int]:
    """(certificates, bytes) held from one origin; (0, 0) for none."""
    return _QUEUE_STATE.unpack(raw) if raw else (0, 0)


def my_number_key(my_number: str) -> bytes:
    return my_number.encode("ascii")


def history_index_key(resident_code: str, position: int) -> bytes:
    return resident_key(resident_code) + U64.pack(position)


def destination_prefix(destination: str) -> bytes:
    """Keys of one destination's queue (and receipts) start with this."""
    return destination.encode("ascii") + _SEP


def queue_key(destination: str, position: int) -> bytes:
    return destination_prefix(destination) + U64.pack(position)


def queue_position(key: bytes) -> int:
    """The position in a ``queue`` (or ``receipts``) key."""
    return U64.unpack(key[-8:])[0]


def queue_state(last_enqueued: int, last_receipted: int) -> bytes:
    return _QUEUE_STATE.pack(last_enqueued, last_receipted)


def parse_queue_state(raw: bytes | None) -> tuple[int, int]:
    """(last enqueued, last receipted); (0, 0) for a queue never used."""
    return _QUEUE_STATE.unpack(raw) if raw else (0, 0)


def destination_key(destination: str) -> bytes:
    return destination.encode("ascii")


def inbox_key(sender: str, destination: str) -> bytes:
    return sender.encode("ascii") + _SEP + destination.encode("ascii")


def parse_inbox_key(key: bytes) -> tuple[str, str]:
    sender, _, destination = bytes(key).partition(_SEP)
    return sender.decode("ascii"), destination.decode("ascii")


def counter_key(counter: Counter) -> bytes:
    return counter.value.encode("ascii")


UNUSED_CODES = b"unused-codes"


def unused_codes_key(cs: str) -> bytes:
    """``counters`` key of the national count of codes designated to ``cs`` and not used yet."""
    return UNUSED_CODES + _SEP + cs.encode("ascii")


class DirectoryKey(StrEnum):
    """The keys of ``directory`` (a handful of singletons)."""

    CURRENT = "current"  # CachedDirectory: the last verified network directory
    SEED_SHA256 = "seed_sha256"  # national server: the digest of the seed file last published from


def directory_key(key: DirectoryKey) -> bytes:
    return key.value.encode("ascii")


MOVEMENT_CURSOR = b"position"


def movement_key(month: bytes, kind: str, a: str, b: str = "") -> bytes:
    """A movement counter: the month's six digits, the kind's tag byte, then its codes (NUL between)."""
    return month + kind.encode("ascii") + a.encode("ascii") + _SEP + b.encode("ascii")


def movement_prefix(month: bytes, kind: str) -> bytes:
    """Keys of one month's counters of one kind start with this."""
    return month + kind.encode("ascii")


def movement_mark_key(resident_code: str, kind: str) -> bytes:
    """A resident's movement mark: the code, NUL, the kind's tag byte (their first of that kind is counted)."""
    return resident_code.encode("ascii") + _SEP + kind.encode("ascii")


def parse_movement_key(key: bytes) -> tuple[str, str]:
    """The (a, b) codes of a movement counter key."""
    a, _, b = bytes(key[7:]).partition(_SEP)
    return a.decode("ascii"), b.decode("ascii")


def operator_key(operator_id: str) -> bytes:
    return operator_id.encode("utf-8")


def audit_leaf_key(index: int) -> bytes:
    return U64.pack(index)


def audit_node_key(level: int, index: int) -> bytes:
    return _AUDIT_NODE.pack(level, index)


def parse_audit_node_key(key: bytes) -> tuple[int, int]:
    level, index = _AUDIT_NODE.unpack(key)
    return level, index


def resident_serial_key(resident_code: str, serial: int) -> bytes:
    """A resident's entry of a per-resident series (copy issuances, DV measures): in serial order."""
    return resident_key(resident_code) + U64.pack(serial)


def serial_of(key: bytes) -> int:
    """The serial in a :func:`resident_serial_key`."""
    return U64.unpack(key[-8:])[0]


def card_key(card_serial: str) -> bytes:
    return card_serial.encode("ascii")


def card_of_resident_key(resident_code: str, card_serial: str) -> bytes:
    return resident_code.encode("ascii") + _SEP + card_serial.encode("ascii")


def cards_of_resident_prefix(resident_code: str) -> bytes:
    return resident_code.encode("ascii") + _SEP


def designation(cs: str, block: int) -> bytes:
    """Value in ``designations``: the CS a code was designated to, and the block it came in."""
    return cs.encode("ascii") + _SEP + U64.pack(block)


def parse_designation(raw: bytes) -> tuple[str, int]:
    cs, _, block = bytes(raw).partition(_SEP)
    return cs.decode("ascii"), U64.unpack(block)[0]


def number_request_key(cs: str, request_id: str) -> bytes:
    return cs.encode("ascii") + _SEP + request_id.encode("utf-8")


HELD, RETIRED = b"A", b"R"
"""State byte of an ``issued_numbers`` value: the number is held by its code, or retired forever."""


def issued_number(resident_code: str, state: bytes) -> bytes:
    return resident_code.encode("ascii") + state


def parse_issued_number(raw: bytes) -> tuple[str, bytes]:
    raw = bytes(raw)
    return raw[:-1].decode("ascii"), raw[-1:]


def subscription_key(subscription_id: str) -> bytes:
    return subscription_id.encode("ascii")


def agency_subscription_key(agency: str, subscription_id: str) -> bytes:
    return agency.encode("ascii") + _SEP + subscription_id.encode("ascii")


def agency_subscriptions_prefix(agency: str) -> bytes:
    return agency.encode("ascii") + _SEP


def push_cursor(acknowledged: int, delivered: int) -> bytes:
    return _QUEUE_STATE.pack(acknowledged, delivered)


def parse_push_cursor(raw: bytes | None) -> tuple[int, int]:
    """(acknowledged, delivered) feed positions; (0, 0) for none."""
    return _QUEUE_STATE.unpack(raw) if raw else (0, 0)


def push_cohort_key(subscription_id: str, month: int) -> bytes:
    """``month`` as YYYYMM."""
    return subscription_id.encode("ascii") + _SEP + _DAY.pack(month)


_SEARCH_TAIL = struct.Struct(">HBBB")
SEARCH_NAME_DIGEST = 16
"""Bytes of SHA-256 of a folded name in a search key: a fixed length whatever the name (LMDB keys are at
most 511 bytes); a collision only adds a candidate that the search then compares and drops."""


def search_prefix(folded_name: str, year: int, month: int, day: int, sex: int) -> bytes:
    """``search_names`` / ``search_kana``: the keys of everyone with this folded name, birth date and sex."""
    digest = hashlib.sha256(folded_name.encode("utf-8")).digest()[:SEARCH_NAME_DIGEST]
    return digest + _SEARCH_TAIL.pack(year, month, day, sex)


def search_key(folded_name: str, year: int, month: int, day: int, sex: int, resident_code: str) -> bytes:
    return search_prefix(folded_name, year, month, day, sex) + resident_key(resident_code)


def search_code(key: bytes, prefix: bytes) -> str:
    """The 住民票コード of a search key found under ``prefix``."""
    return bytes(key[len(prefix) :]).decode("ascii")


class SearchState(StrEnum):
    """The keys of ``search_state``."""

    BUILT = "built"  # the fold version the index was completely built with
    BUILDING = "building"  # a rebuild in progress: its fold version ‖ the last code indexed


def search_state_key(key: SearchState) -> bytes:
    return key.value.encode("ascii")


def agency_pair_key(corporate_number: str, value: str) -> bytes:
    """``agency_ids`` (value: a 住民票コード) and ``agency_id_codes`` (value: an agency identifier)."""
    return corporate_number.encode("ascii") + _SEP + value.encode("ascii")
