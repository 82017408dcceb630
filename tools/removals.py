"""Remove each security check, one at a time, in a copy of the project, and run the tests that must
notice: a check whose tests still pass is a gap (docs/SECURITY.md, "Every security check").

Usage: ``python tools/removals.py [NAME ...]`` (all by default; ``--list`` prints them). Each removal
replaces one exact piece of source text with code that skips the check; the copy (the tracked files,
no .venv) runs the named tests with itself first on PYTHONPATH, node processes included. A removal
counts as noticed only when pytest reports failed tests (exit status 1) — not when the copy fails to
import or collect (that would prove nothing). ``tests/test_security_doc.py`` keeps this list applicable
(each text still occurs exactly once) and the same as the document's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECKS = "tests/test_security_checks.py"
NUMBERS = "tests/test_numbers_e2e.py"
ACCESS = "tests/test_access_table_e2e.py"
RESTART = "tests/test_restart_security_e2e.py"
COPIES = "tests/test_copies.py"
MOVES = "tests/test_move_intake.py"
INTAKE = "jukinet/cs_node/move_intake.py"
CODE_CHANGE = "tests/test_code_change.py"
CARD = "tests/test_resident_card.py"
CARD_EVENTS = "tests/test_card_event_authority.py"
CODE_CHANGE_E2E = "tests/test_code_change_e2e.py"
OWNERSHIP = "tests/test_ownership.py"
NUMBERS_PY = "jukinet/domain/numbers.py"
DISCLOSURE = "tests/test_disclosure.py"
DISCLOSURE_E2E = "tests/test_disclosure_e2e.py"
VERIFIER = "jukinet/clients/disclosure.py"
SEARCH = "jukinet/server/national/search.py"
SEARCH_TESTS = "tests/test_search.py"
LEGAL = "tests/test_legal_tables.py"
PUSH = "tests/test_push.py"


@dataclass(frozen=True)
class Removal:
    name: str
    check: str  # what is removed, in words
    path: str
    old: str  # exact source text, occurring once in ``path``
    new: str
    tests: tuple[str, ...]  # pytest node ids that must fail without the check


REMOVALS: tuple[Removal, ...] = (
    # -- the peer gate and certificates ---------------------------------------------------------------------
    Removal(
        "tls-1.3",
        "TLS 1.3 required of every call (health and reflection too)",
        "jukinet/server/runtime/peers.py",
        "if version != REQUIRED_TLS_VERSION:",
        "if False:",
        ("tests/test_tls_version_e2e.py::test_tls_1_2_is_refused_on_every_call",),
    ),
    Removal(
        "revocation",
        "a certificate on its CA's CRL is refused",
        "jukinet/pki/trust.py",
        "if revoked is not None:",
        "if False:",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "ca-kind",
        "the issuing CA matches the identity kind (the operator CA cannot issue cs:131148)",
        "jukinet/pki/trust.py",
        "if ISSUER_FOR_KIND[node_id.kind] != kind:",
        "if False:",
        (f"{ACCESS}::test_a_ca_vouches_only_for_its_own_kinds_at_the_gate",),
    ),
    Removal(
        "deny-by-default",
        "a node refuses to serve an RPC without a policy",
        "jukinet/server/runtime/guard.py",
        'raise Rejected(Problem.BROKEN, f"{service_descriptor.full_name}.{method.name} has no access policy")',
        "pass",
        ("tests/test_security_policy.py::test_unguarded_rpc_refuses_to_serve",),
    ),
    Removal(
        "terminal-site",
        "a terminal is admitted only at its own site's nodes",
        "jukinet/server/runtime/policy.py",
        "if any(n.kind is NodeKind.TERMINAL and n.site in self.sites for n in caller.node_ids):",
        "if any(n.kind is NodeKind.TERMINAL for n in caller.node_ids):",
        ("tests/test_security_policy.py::test_terminal_policy_checks_the_site",),
    ),
    # -- roles (the access table) -----------------------------------------------------------------------
    Removal(
        "role-list-provisions",
        "the role answer-disclosure on ListProvisions",
        "jukinet/server/admin.py",
        "self.disclosure = OperatorWithRole(self.terminals, Role.ANSWER_DISCLOSURE)",
        "self.disclosure = OperatorWithRole(self.terminals)",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-quarantine",
        "the role manage-links on the outbox quarantine",
        "jukinet/server/admin.py",
        "self.link_managers = OperatorWithRole(self.terminals, Role.MANAGE_LINKS)",
        "self.link_managers = OperatorWithRole(self.terminals)",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-registry",
        "the role register-residents on the CS registry",
        "jukinet/cs_node/registry.py",
        "OperatorWithRole(TerminalOf.of_nodes([registry.node_id]), Role.REGISTER_RESIDENTS)",
        "OperatorWithRole(TerminalOf.of_nodes([registry.node_id]))",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-administration",
        "the role administer-operators on unlock, revoke, show and login attempts",
        "jukinet/server/operator_rpc.py",
        "self.administrators = OperatorWithRole(TerminalOf(sites), Role.ADMINISTER_OPERATORS)",
        "self.administrators = OperatorWithRole(TerminalOf(sites))",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "legal-table-row",
        "an agency needs a legal-table row for the business",
        "jukinet/server/provision.py",
        "rows = self._scope.rows(self._tables(), agency, business)\n        if not rows:",
        "rows = self._scope.rows(self._tables(), agency, business) or list(self._tables().rows[:1])\n        if False:",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "push-legal-table-row",
        "a push subscription needs the agency's legal-table row for the business",
        "jukinet/server/national/push.py",
        "row = self._tables().national(agency.corporate_number, business)\n        if row is None:",
        "row = self._tables().national(agency.corporate_number, business) or self._tables().rows[0]\n        if False:",
        (f"{PUSH}::test_no_legal_basis_limits_and_another_agencys_subscription",),
    ),
    Removal(
        "push-owner",
        "another agency's subscription is not found (receive, cancel)",
        "jukinet/server/national/push.py",
        "if sub is None or sub.agency != str(agency):",
        "if sub is None:",
        (f"{PUSH}::test_no_legal_basis_limits_and_another_agencys_subscription",),
    ),
    Removal(
        "push-never-delivered",
        "an acknowledgement beyond the delivered mark is refused",
        "jukinet/server/national/push.py",
        "if position > stream.delivered:",
        "if False:",
        (f"{PUSH}::test_changes_are_pushed_from_the_cursor_and_acknowledged",),
    ),
    Removal(
        "push-cohort-one-at-a-time",
        "one monthly cohort (a scan of every national record) is computed at a time",
        "jukinet/server/national/push.py",
        "if not self._cohort_scan.acquire(blocking=False):",
        "if False:",
        (f"{PUSH}::test_the_monthly_cohort_is_taken_once_and_acknowledged_whole",),
    ),
    Removal(
        "push-pseudonym-by-municipality",
        "a push subscription of a row naming residents by agency identifier never lists 住民票コード",
        "jukinet/server/national/push.py",
        "if row.pseudonymous and target is not None and target.resident_codes:",
        "if False:",
        (f"{PUSH}::test_a_row_naming_residents_by_agency_identifier_is_pushed_them_and_never_the_numbers",),
    ),
    Removal(
        "push-row-every-message",
        "an open push stream is decided by the legal tables held at each message (withdrawn: it ends)",
        "jukinet/server/national/push.py",
        "stream.row = self._current_row(stream)",
        "pass",
        (f"{PUSH}::test_an_open_stream_follows_the_legal_tables_held_now",),
    ),
    Removal(
        "push-refusals-audited",
        "every refusal of the push service is audited and counted",
        "jukinet/server/national/push.py",
        "_PROVIDE = audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY",
        "_PROVIDE = None",
        ("tests/test_push_e2e.py::test_no_legal_basis_and_bad_targets_are_refused_and_store_nothing",),
    ),
    # -- operator login ------------------------------------------------------------------------------------
    Removal(
        "card-signature",
        "the card's signature over the login challenge",
        "jukinet/server/login.py",
        "verify_ecdsa_raw(card.public_key, signed, request.signature)",
        "pass",
        (f"{CHECKS}::test_the_card_must_sign_the_challenge",),
    ),
    Removal(
        "challenge-operator",
        "the login challenge is bound to its operator",
        "jukinet/server/login.py",
        "if pending.operator_id != operator_id or pending.terminal_fp != caller.fingerprint:",
        "if pending.terminal_fp != caller.fingerprint:",
        (f"{CHECKS}::test_a_challenge_is_bound_to_its_operator",),
    ),
    Removal(
        "challenge-terminal",
        "the login challenge is bound to its terminal",
        "jukinet/server/login.py",
        "if pending.operator_id != operator_id or pending.terminal_fp != caller.fingerprint:",
        "if pending.operator_id != operator_id:",
        (f"{CHECKS}::test_a_challenge_is_bound_to_its_terminal",),
    ),
    Removal(
        "challenge-expiry",
        "the login challenge expires (30 s)",
        "jukinet/server/login.py",
        "if self._clock.monotonic() > pending.expires:",
        "if False:",
        (f"{CHECKS}::test_a_challenge_expires",),
    ),
    Removal(
        "enrolled-card",
        "the card is the one enrolled for the operator",
        "jukinet/server/login.py",
        "if card.certificate.public_bytes(Encoding.DER) != record.card_certificate:",
        "if False:",
        (f"{CHECKS}::test_only_the_enrolled_card_logs_in",),
    ),
    Removal(
        "card-names-operator",
        "the card certificate names the operator",
        "jukinet/server/login.py",
        "if not any(str(n) == record.info.operator_id for n in card.node_ids):",
        "if False:",
        (f"{CHECKS}::test_the_card_must_name_the_operator",),
    ),
    Removal(
        "lockout",
        "the fifth consecutive failure locks the operator",
        "jukinet/domain/operators.py",
        "if record.info.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:",
        "if False:",
        ("tests/test_login.py::test_biometric_failures_count_and_the_fifth_locks",),
    ),
    Removal(
        "first-enrollment",
        "only a node's first operator is enrolled without an administrator (atomically)",
        "jukinet/server/login.py",
        "if bootstrap and self._storage.operators.count_in(txn) != 0:",
        "if False:",
        ("tests/test_login.py::test_only_one_of_several_simultaneous_first_enrollments_succeeds",),
    ),
    # -- sessions ---------------------------------------------------------------------------------------------
    Removal(
        "session-signature",
        "a session is believed only with the node's signature",
        "jukinet/server/runtime/sessions.py",
        "claims = open_signed(token, operator_pb2.SessionClaims, self._public_key)",
        "claims = operator_pb2.SessionClaims.FromString(token.payload)",
        ("tests/test_sessions.py::test_tampered_claims_are_refused",),
    ),
    Removal(
        "session-terminal",
        "a session is bound to the terminal certificate it was issued to",
        "jukinet/server/runtime/sessions.py",
        "if claims.terminal_certificate_sha256 != terminal_fp:",
        "if False:",
        ("tests/test_sessions.py::test_expiry_terminal_logout_lock_and_revocation",),
    ),
    Removal(
        "session-expiry",
        "a session expires",
        "jukinet/server/runtime/sessions.py",
        "if self._clock.now_ms() >= _ms(claims.expires_at):",
        "if False:",
        ("tests/test_sessions.py::test_expiry_terminal_logout_lock_and_revocation",),
    ),
    Removal(
        "logout-durable",
        "a logout is stored, so it survives a restart",
        "jukinet/server/login.py",
        "self._storage.operators.revoke_session(txn, claims.session_id, claims.expires_at.ToMilliseconds())",
        "pass",
        (f"{RESTART}::test_a_logout_survives_a_restart",),
    ),
    # -- links ----------------------------------------------------------------------------------------------
    Removal(
        "batch-signature",
        "a link batch is believed only with its sender's signature",
        "jukinet/server/runtime/intake.py",
        "batch = open_signed(envelope, link_pb2.LinkBatch, signer.public_key)",
        "batch = link_pb2.LinkBatch.FromString(envelope.payload)",
        ("tests/test_intake.py::test_a_prefecture_cannot_insert_alter_or_drop_notices",),
    ),
    Removal(
        "re-delivery",
        "a re-delivered position is counted, not applied again (across the receiver's crash)",
        "jukinet/server/runtime/intake.py",
        "fresh = [(p, item) for p, item in zip(item_positions(batch), batch.items, strict=True) if p > mark]",
        "fresh = list(zip(item_positions(batch), batch.items, strict=True))",
        (f"{RESTART}::test_a_batch_stored_before_a_crash_is_not_applied_again",),
    ),
    Removal(
        "notice-origin",
        "a notice comes from the CS it names as its origin",
        "jukinet/server/changes.py",
        "if notice.origin != origin_id:",
        "if False:",
        (f"{CHECKS}::test_a_notice_must_name_its_sender_as_origin",),
    ),
    Removal(
        "notice-municipality",
        "a CS sends records of its own municipality only",
        "jukinet/server/changes.py",
        "if record.address.municipality_code != municipality:",
        "if False:",
        ("tests/test_intake.py::test_prefecture_refusals",),
    ),
    Removal(
        "status-vs-reason",
        "at ingest, a record's status follows from its change reason",
        "jukinet/server/changes.py",
        "if not problems and record.status != status_for(record.change_reason):",
        "if False:",
        (f"{CHECKS}::test_a_notice_whose_status_does_not_follow_from_its_reason_is_refused",),
    ),
    # -- numbers and ownership (issue 8) -------------------------------------------------------------------
    Removal(
        "code-designation",
        "a CS creates a record only with an unused code designated to it",
        "jukinet/domain/changes.py",
        "if new.change_reason in CREATING and current is None and not designated and not granted:",
        "if False:",
        (f"{NUMBERS}::test_the_cs_refuses_a_birth_with_another_residents_code",),
    ),
    Removal(
        "operator-my-number",
        "a My Number typed at the CS must be the one the national server assigned to the code",
        "jukinet/domain/changes.py",
        "if number and number not in (known, assigned) and not granted:",
        "if False:",
        (f"{NUMBERS}::test_the_cs_refuses_another_residents_my_number",),
    ),
    Removal(
        "notice-ownership",
        "the prefecture and national server apply a notice only for a resident its origin owns",
        "jukinet/server/changes.py",
        "        if found is not None:\n            problem, message = found",
        "        if False:\n            problem, message = found",
        (f"{NUMBERS}::test_the_prefecture_refuses_both_attacks_from_a_cs_that_skips_its_checks",),
    ),
    Removal(
        "late-removal-history",
        "at the tiers, a removal from a non-owner is history only, whatever the current record's status",
        "jukinet/domain/changes.py",
        "return not (foreign and incoming.status == R.RECORD_STATUS_REMOVED)",
        "return True",
        (f"{OWNERSHIP}::test_a_former_owners_removal_is_history_only_whatever_the_current_status",),
    ),
    Removal(
        "birth-new-code",
        "at the tiers, a 出生 only for a code with no record (never a living or dead resident's)",
        NUMBERS_PY,
        "if record.change_reason == R.CHANGE_REASON_BIRTH and current is not None:",
        "if False:",
        (f"{OWNERSHIP}::test_a_birth_over_a_code_with_a_record_is_refused_at_the_tiers",),
    ),
    Removal(
        "cs-birth-new-code",
        "at the CS, a 出生 only for a code with no record here",
        "jukinet/domain/changes.py",
        "elif new.change_reason == R.CHANGE_REASON_BIRTH and current is not None:",
        "elif False:",
        ("tests/test_changes.py::test_a_birth_never_reuses_a_code_that_has_a_record",),
    ),
    Removal(
        "grant-time-limits",
        "at the tiers, a grant's 転入 is within the legal time limits as of the day the CS recorded it",
        "jukinet/server/changes.py",
        'check_move_in_dates(date_of(notice.record.change_date, "record.change_date"), planned, registered)',
        "pass",
        (f"{OWNERSHIP}::test_the_tiers_apply_the_legal_time_limits_of_a_move_in",),
    ),
    Removal(
        "grant-not-self",
        "a move-out grant moves residents to another CS than its origin (no self-addressed grant)",
        "jukinet/server/grants.py",
        "if destination == origin:",
        "if False:",
        (f"{OWNERSHIP}::test_a_self_addressed_grant_is_refused_before_the_transaction",),
    ),
    Removal(
        "grant-move-in-only",
        "at the tiers, a move-out grant covers only a 転入 or 特例転入",
        NUMBERS_PY,
        "if record.change_reason not in _MOVE_IN:",
        "if False:",
        (f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",),
    ),
    Removal(
        "grant-once",
        "at the tiers, a move-out grant covers a resident once (a replay is refused)",
        NUMBERS_PY,
        "if grant.used:",
        "if False:",
        (
            f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",
            f"{OWNERSHIP}::test_the_national_server_refuses_a_replayed_grant_and_stores_nothing",
        ),
    ),
    Removal(
        "grant-window",
        "at the tiers, a move-out grant covers a 転入 dated −14..+30 days around its planned date",
        NUMBERS_PY,
        "if after > AFTER_PLANNED_DAYS or -after > BEFORE_PLANNED_DAYS:",
        "if False:",
        (f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",),
    ),
    Removal(
        "grant-no-designation",
        "at the tiers, a move-out grant never covers a code without a record (no stand-in for a designation)",
        NUMBERS_PY,
        '    if current is None:\n        return f"{what}: there is no record',
        '    if False:\n        return f"{what}: there is no record',
        (
            f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",
            f"{OWNERSHIP}::test_the_national_server_refuses_a_replayed_grant_and_stores_nothing",
        ),
    ),
    Removal(
        "grant-origin-owner",
        "at the tiers, a move-out grant covers a resident only where its origin owns the current record",
        NUMBERS_PY,
        "if _owner(current) != grant.origin:",
        "if False:",
        (f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",),
    ),
    Removal(
        "grant-after-re-entry",
        "at the tiers, a move-out grant no longer covers a resident its origin recorded again after the 転出",
        NUMBERS_PY,
        "if grant.move_out_seen:\n",
        "if False:\n",
        (f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",),
    ),
    Removal(
        "grant-move-out-date",
        "at the tiers, a move-out grant covers the origin's 転出 除票 with the grant's planned date only",
        NUMBERS_PY,
        "_day(current.change_date) == grant.planned_date",
        "True",
        (f"{OWNERSHIP}::test_a_grant_that_does_not_cover_the_change_is_refused",),
    ),
    Removal(
        "grant-elsewhere-moved-out",
        "a prefecture defers a grant from another prefecture only over no record or a 転出 除票",
        NUMBERS_PY,
        "if current.status == R.RECORD_STATUS_REMOVED and current.change_reason in _MOVED_OUT:",
        "if True:",
        (f"{OWNERSHIP}::test_a_prefecture_defers_a_grant_from_another_prefecture",),
    ),
    Removal(
        "number-not-blanked",
        "at the tiers, no notice that becomes the current record blanks a stored My Number",
        NUMBERS_PY,
        "if current is not None and current.my_number and (owned or not removal):",
        "if False:",
        (f"{OWNERSHIP}::test_a_take_over_never_blanks_a_stored_my_number",),
    ),
    Removal(
        "receipt-names-batch",
        "a sender drops a batch only on a receipt naming exactly that batch",
        "jukinet/server/runtime/links.py",
        "if got != expected:",
        "if False:",
        (f"{RESTART}::test_a_receipt_for_another_batch_drops_nothing",),
    ),
    # -- the network directory ---------------------------------------------------------------------------
    Removal(
        "directory-signer",
        "a network directory is believed only signed by a signing certificate naming national",
        "jukinet/pki/directory.py",
        'signer = self.trust.identify_as(envelope.certificate, NodeId.national(), purpose="signing")',
        'signer = self.trust.identify(envelope.certificate, expect="node")',
        ("tests/test_directory.py::test_a_directory_signed_by_another_node_is_refused",),
    ),
    Removal(
        "directory-rollback",
        "a network directory older than the one held is refused",
        "jukinet/pki/directory.py",
        "if version < cached.version:",
        "if False:",
        ("tests/test_directory.py::test_rollback_and_equivocation_are_refused",),
    ),
    Removal(
        "directory-expiry",
        "an expired network directory is not taken",
        "jukinet/pki/directory.py",
        "if directory.expired(now) and not allow_expired:",
        "if False:",
        ("tests/test_directory.py::test_expired_and_future_directories_are_refused",),
    ),
    Removal(
        "directory-expired-peers",
        "a node does not act on its expired directory (no peer addresses, no fingerprints)",
        "jukinet/server/runtime/directory.py",
        "if directory.expired(self._clock.now_ms()):",
        "if False:",
        ("tests/test_directory.py::test_an_expired_directory_is_not_acted_on",),
    ),
    Removal(
        "directory-duplicates",
        "a network directory listing a node twice is refused",
        "jukinet/domain/directory.py",
        "if str(node_id) in by_id:",
        "if False:",
        ("tests/test_directory.py::test_a_malformed_directory_is_refused_whole",),
    ),
    Removal(
        "receipt-listed-signer",
        "a receipt must be signed by the certificate the directory lists for the destination",
        "jukinet/server/runtime/links.py",
        "if listed is not None and signer.fingerprint != listed.signing:",
        "if False:",
        ("tests/test_directory_e2e.py::test_an_impostor_prefecture_cannot_feed_a_directory_or_receipt_a_batch",),
    ),
    Removal(
        "role-publish-directory",
        "the role administer-operators on PublishDirectory",
        "jukinet/server/national/directory.py",
        "OperatorWithRole(TerminalOf(sites), Role.ADMINISTER_OPERATORS)",
        "OperatorWithRole(TerminalOf(sites))",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    # -- provision and audit -----------------------------------------------------------------------------
    Removal(
        "provision-audit",
        "a provision's audit entry commits with it, before the answer",
        "jukinet/server/provision.py",
        "storage.audit.append(txn, leaf)",
        "pass",
        (f"{CHECKS}::test_a_provision_is_in_the_audit_log_before_it_is_answered",),
    ),
    Removal(
        "four-items-too-broad",
        "a four-item search matching more than MAX_SEARCH_CANDIDATES people provides nothing",
        SEARCH,
        "if len(found) > MAX_SEARCH_CANDIDATES:",
        "if False:",
        (f"{SEARCH_TESTS}::test_a_search_too_broad_is_refused_without_a_count_and_logs_nothing",),
    ),
    Removal(
        "four-items-address",
        "a person whose address differs from the given one is not provided by a four-item search",
        SEARCH,
        "if how.address_differs:",
        "if False:",
        (f"{SEARCH_TESTS}::test_every_candidate_is_a_provision_logged_in_one_transaction_before_the_answer",),
    ),
    Removal(
        "four-items-too-broad-no-count",
        "a four-item search refused as too broad does not say how many people match",
        SEARCH,
        'f"more than {MAX_SEARCH_CANDIDATES} people match these items; a four-item search answers at most "',
        'f"{len(found)} people match these items; a four-item search answers at most "',
        (f"{SEARCH_TESTS}::test_a_search_too_broad_is_refused_without_a_count_and_logs_nothing",),
    ),
    Removal(
        "four-items-address-permitted",
        "a four-item search gives an address only under a row that permits the field group address",
        SEARCH,
        'if (municipality or address_text) and not row.permits("address"):',
        "if False:",
        (f"{SEARCH_TESTS}::test_a_row_without_address_learns_nothing_of_the_address",),
    ),
    Removal(
        "four-items-report-permitted",
        "a four-item candidate's match report covers only the field groups the row permits",
        SEARCH,
        "how.reported(row.permits),",
        "how,",
        (
            f"{SEARCH_TESTS}::test_a_row_without_address_learns_nothing_of_the_address",
            f"{SEARCH_TESTS}::test_a_row_without_name_is_told_nothing_of_how_name_or_reading_compared",
        ),
    ),
    Removal(
        "four-items-logged",
        "every four-item candidate is in the provision log before the answer",
        SEARCH,
        "provision_id = log_provision(self._storage, self._auditor, txn, entry, detail)",
        "provision_id = 0",
        (f"{SEARCH_TESTS}::test_every_candidate_is_a_provision_logged_in_one_transaction_before_the_answer",),
    ),
    Removal(
        "four-items-index-built",
        "the four-item search answers only from a completely built index",
        SEARCH,
        "if not self._index.ready(txn):",
        "if False:",
        (f"{SEARCH_TESTS}::test_records_stored_before_the_index_are_indexed_by_a_resumable_rebuild",),
    ),
    Removal(
        "legal-row-check",
        "a network directory with one malformed legal-table row is refused whole",
        "jukinet/domain/directory.py",
        "problem = row_problem(row)",
        "problem = None",
        (f"{LEGAL}::test_one_bad_row_refuses_the_directory_whole",),
    ),
    Removal(
        "my-number-business",
        "a lookup by My Number only for a business whose row permits my_number",
        "jukinet/server/provision.py",
        'rows = [r for r in rows if r.permits("my_number")]',
        "rows = list(rows)",
        (f"{LEGAL}::test_a_business_without_my_number_may_not_ask_by_my_number",),
    ),
    Removal(
        "resident-code-business",
        "a lookup by 住民票コード only for a business whose row permits resident_code",
        "jukinet/server/provision.py",
        'rows = [r for r in rows if r.permits("resident_code")]',
        "rows = list(rows)",
        (f"{LEGAL}::test_a_business_without_resident_code_may_not_ask_by_resident_code",),
    ),
    Removal(
        "prefecture-row-scope",
        "a prefecture's row reaches only residents of its own prefecture",
        "jukinet/server/prefecture/provision.py",
        "r.prefecture is not None and r.prefecture.prefecture_code == prefecture",
        "r.prefecture is not None",
        (f"{LEGAL}::test_a_prefecture_row_reaches_its_own_prefecture_only",),
    ),
    Removal(
        "pseudonym-no-numbers",
        "a row naming residents by agency identifier never hands out the 住民票コード or My Number",
        "jukinet/domain/legal.py",
        "return group in self.fields and not (self.pseudonymous and group in NUMBER_GROUPS)",
        "return group in self.fields",
        (f"{LEGAL}::test_a_pseudonymous_row_never_redacts_to_a_number",),
    ),
    Removal(
        "agency-identifier-per-agency",
        "an agency identifier is derived over the agency: two agencies' identifiers of one resident differ",
        "jukinet/server/national/agency_identifiers.py",
        "macs = self._macs([agency_identifier_input(corporate, f) for f in part])",
        'macs = self._macs([agency_identifier_input("", f) for f in part])',
        (f"{LEGAL}::test_agency_identifiers_per_agency_stable_and_resolved_only_by_their_agency",),
    ),
    Removal(
        "tree-head-signature",
        "an audit tree head is believed only with the node's signature",
        "jukinet/server/audit.py",
        "head = open_signed(signed, audit_pb2.TreeHead, key)",
        "head = audit_pb2.TreeHead.FromString(signed.payload)",
        (f"{CHECKS}::test_a_tree_head_needs_the_node_signature",),
    ),
    # -- 広域交付 (copies) -----------------------------------------------------------------------------------
    Removal(
        "role-copies",
        "the role issue-copies on RequestCopy",
        "jukinet/cs_node/copies.py",
        "self.clerks = OperatorWithRole(terminals, Role.ISSUE_COPIES)",
        "self.clerks = OperatorWithRole(terminals)",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-dv-measures",
        "the role manage-dv-measures on the DV support measures",
        "jukinet/cs_node/copies.py",
        "OperatorWithRole(TerminalOf.of_nodes([measures.node_id]), Role.MANAGE_DV_MEASURES)",
        "OperatorWithRole(TerminalOf.of_nodes([measures.node_id]))",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "copy-other-cs",
        "a CS never admits itself where only another CS may ask (IssueCopy)",
        "jukinet/server/runtime/policy.py",
        "if any(n in self.own for n in caller.node_ids):",
        "if False:",
        (f"{COPIES}::test_only_another_cs_may_ask_for_a_copy",),
    ),
    Removal(
        "copy-requester",
        "a copy request names its sender as the requesting CS",
        "jukinet/cs_node/copies.py",
        "if requesting not in caller.node_ids:",
        "if False:",
        (f"{COPIES}::test_the_request_must_be_the_callers_addressed_here_fresh_and_new",),
    ),
    Removal(
        "copy-card-holder",
        "the card presented is the card of the resident whose copy is asked",
        "jukinet/cs_node/copies.py",
        "if request.resident_code and request.resident_code != holder:",
        "if False:",
        (f"{COPIES}::test_the_card_must_be_the_residents_and_may_be_presented",),
    ),
    Removal(
        "copy-current-resident",
        "a copy by 広域交付 only of a current resident (not a 除票)",
        "jukinet/cs_node/copies.py",
        "if not (here and record.status == identity_pb2.RECORD_STATUS_ACTIVE):",
        "if False:",
        (f"{COPIES}::test_only_a_current_resident_gets_a_copy",),
    ),
    Removal(
        "copy-replay",
        "a copy request is answered once",
        "jukinet/cs_node/copies.py",
        "if s.copies.answered(txn, resident.resident_code, digest, now - 2 * REQUEST_FRESH_MS):",
        "if False:",
        (f"{COPIES}::test_the_request_must_be_the_callers_addressed_here_fresh_and_new",),
    ),
    Removal(
        "copy-dv-measure",
        "a DV support measure refuses the copy",
        "jukinet/cs_node/copies.py",
        "if measure is not None:",
        "if False:",
        (f"{COPIES}::test_a_dv_measure_refuses_with_a_message_that_says_nothing_of_the_person",),
    ),
    Removal(
        "copy-logged",
        "a copy is in the issuance log before it leaves",
        "jukinet/cs_node/copies.py",
        "s.copies.append(txn, issuance)",
        "pass",
        (f"{COPIES}::test_a_copy_is_issued_logged_and_audited_in_one_transaction",),
    ),
    Removal(
        "copy-numbers-asked",
        "a copy holds the 個人番号 only when expressly requested",
        "jukinet/domain/copies.py",
        "if request.include_my_number:",
        "if True:",
        (f"{COPIES}::test_a_copy_holds_the_household_never_the_domicile_and_the_numbers_only_when_asked",),
    ),
    Removal(
        "copy-signature",
        "the requesting CS believes a copy only with the home CS's certified signature",
        "jukinet/cs_node/copies.py",
        "copy, _ = open_certified(signed, C.CertifiedCopy, self._trust, home)",
        "copy = C.CertifiedCopy.FromString(signed.payload)",
        (f"{COPIES}::test_the_requesting_cs_verifies_signer_chain_and_bytes",),
    ),
    Removal(
        "copy-answers-request",
        "the requesting CS accepts only a copy answering exactly its request",
        "jukinet/domain/copies.py",
        "if copy.request_sha256 != request_sha256:",
        "if False:",
        (f"{COPIES}::test_the_requesting_cs_refuses_a_copy_that_is_not_the_answer",),
    ),
    # -- moves between municipalities (転出証明書情報 and 転入通知 between CS nodes, 転入 / 特例転入) ------------
    Removal(
        "move-cert-signature",
        "a 転出証明書情報 is believed only with the signature of the node certificate it carries (end to end)",
        INTAKE,
        "certificate, signer = signed_by_node(envelope, moves_pb2.MoveOutCertificate, self._trust)",
        "certificate, signer = moves_pb2.MoveOutCertificate.FromString(envelope.payload), "
        'self._trust.identify(envelope.certificate, expect="node", purpose="signing")',
        (f"{MOVES}::test_forged_certificates_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-grant-origin",
        "a 転出 grant is signed by the CS it names as its origin",
        "jukinet/server/grants.py",
        "if not signer.names(origin):",
        "if False:",
        (f"{MOVES}::test_forged_certificates_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-cert-origin",
        "a 転出証明書情報 is signed by its grant's origin",
        INTAKE,
        'if not signer.names(origin):\n            raise Rejected(Problem.DENIED, f"signed by {signer}, not by',
        'if False:\n            raise Rejected(Problem.DENIED, f"signed by {signer}, not by',
        (f"{MOVES}::test_forged_certificates_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-cert-destination",
        "a 転出証明書情報 is taken only by the CS its grant is addressed to",
        INTAKE,
        "if destination != here:",
        "if False:",
        (f"{MOVES}::test_forged_certificates_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-cert-window",
        "a 転出証明書情報 is refused once its window for a 転入 has closed, or planned further ahead than allowed",
        INTAKE,
        "check_certificate_arrival(planned, day)",
        "pass",
        (f"{MOVES}::test_a_certificate_outside_its_window_is_refused",),
    ),
    Removal(
        "move-cert-share",
        "one origin CS's share of the 転出証明書情報 a CS holds (count and bytes)",
        INTAKE,
        "return count > MAX_HELD_PER_ORIGIN or size > MAX_HELD_PER_ORIGIN_BYTES",
        "return False",
        (f"{MOVES}::test_one_origin_cannot_fill_a_cs",),
    ),
    Removal(
        "move-cert-expiry",
        "a held 転出証明書情報 is deleted after its last day for a 転入",
        INTAKE,
        "self.sweep(day)",
        "pass",
        (f"{MOVES}::test_held_certificates_are_deleted_after_their_window_and_never_taken_again",),
    ),
    Removal(
        "move-cert-once",
        "a 転出証明書情報 is kept as first received (sent again, it does not reset who moved in)",
        INTAKE,
        "if moves.received(txn, arrival.grant_id) is None:",
        "if True:",
        (f"{MOVES}::test_a_certificate_is_kept_as_first_received_and_serves_each_member_once",),
    ),
    Removal(
        "move-items-from-cs",
        "only CS nodes hand over 転出証明書情報 and 転入通知",
        INTAKE,
        "if delivery.sender.kind is not NodeKind.CS:",
        "if False:",
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-signature",
        "a 転入通知 is believed only with the signature of the node certificate it carries (end to end)",
        INTAKE,
        "notice, signer = signed_by_node(envelope, moves_pb2.MoveInNotice, self._trust)",
        "notice, signer = moves_pb2.MoveInNotice.FromString(envelope.payload), "
        'self._trust.identify(envelope.certificate, expect="node", purpose="signing")',
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-origin",
        "a 転入通知 is signed by the CS it names as its origin",
        INTAKE,
        'if not signer.names(origin):\n            raise Rejected(Problem.DENIED, f"names origin',
        'if False:\n            raise Rejected(Problem.DENIED, f"names origin',
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-addressed",
        "a 転入通知 is taken only by the CS it is addressed to",
        INTAKE,
        "if notice.destination != str(here):",
        "if False:",
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-from-dest",
        "a 転入通知 comes from its grant's destination",
        INTAKE,
        "if grant.destination != str(origin):",
        "if False:",
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-members",
        "a 転入通知 names members of its grant only",
        INTAKE,
        "if strangers:",
        "if False:",
        (f"{MOVES}::test_forged_and_misdirected_notices_are_refused_and_store_nothing",),
    ),
    Removal(
        "move-notice-date",
        "a 転入通知's move-in date is one its grant allows",
        INTAKE,
        'check_notice_move_in(move_in, date_of(grant.planned_date, "planned_date"), today(self._clock))',
        "pass",
        (f"{MOVES}::test_a_notice_must_report_a_move_in_date_and_reason_the_grant_allows",),
    ),
    Removal(
        "move-out-one-grant",
        "a resident is moved out by one open grant at a time",
        "jukinet/cs_node/moves.py",
        "self._not_moving(txn, member, day)",
        "pass",
        (f"{MOVES}::test_a_resident_is_moved_out_by_one_open_grant_at_a_time",),
    ),
    Removal(
        "move-in-time-limits",
        "a 転入 meets the legal time limits",
        "jukinet/cs_node/moves.py",
        'check_move_in_dates(move_in, date_of(grant.planned_date, "planned_date"), day)',
        "pass",
        (f"{MOVES}::test_a_late_move_in_is_refused_and_stores_nothing",),
    ),
    Removal(
        "move-in-14-days",
        "a 転入 is registered within 14 days of moving in",
        "jukinet/domain/moves.py",
        "if late > REGISTRATION_DAYS:",
        "if False:",
        ("tests/test_moves.py::test_move_in_time_limits_at_their_boundaries",),
    ),
    Removal(
        "move-in-30-days",
        "the move-in date is within 30 days of the planned move-out date",
        "jukinet/domain/moves.py",
        "if after > AFTER_PLANNED_DAYS:",
        "if False:",
        ("tests/test_moves.py::test_move_in_time_limits_at_their_boundaries",),
    ),
    Removal(
        "move-in-once",
        "a member moves in once per 転出証明書情報",
        "jukinet/cs_node/moves.py",
        "if code in moved:",
        "if False:",
        (f"{MOVES}::test_a_certificate_is_kept_as_first_received_and_serves_each_member_once",),
    ),
    Removal(
        "special-move-in-card",
        "a 特例転入 needs a card the 転出証明書情報 lists for that member",
        "jukinet/cs_node/moves.py",
        "if card_serial not in listed.card_serials:",
        "if False:",
        (f"{MOVES}::test_a_special_move_in_needs_a_card_the_certificate_lists_for_that_member",),
    ),
    Removal(
        "special-move-in-certificate",
        "a 特例転入 needs the very authentication certificate the 転出証明書情報 lists for that card",
        "jukinet/cs_node/moves.py",
        "if len(fingerprints) != len(listed.card_serials) or fingerprints[index] != card_fingerprint:",
        "if False:",
        (f"{MOVES}::test_a_special_move_in_needs_a_card_the_certificate_lists_for_that_member",),
    ),
    # -- My Number cards: who may act on which card (attack-report findings 1, 4, 5, 11) --------------------
    Removal(
        "copy-card-certificate",
        "広域交付: the presented card certificate is the one the home CS stored for that card",
        "jukinet/cs_node/copy_cards.py",
        "if card is not None and card.auth_certificate != der:",
        "if False:",
        (f"{CARD}::test_a_home_cs_accepts_only_the_certificate_it_stored_before_using_a_slot",),
    ),
    Removal(
        "presence-slot-last",
        "a card presentation uses a replay-cache slot only after the node's own check of the card",
        "jukinet/pki/card_presence.py",
        "        if accept is not None:\n            accept(card)\n        self._consume(",
        "        self._consume(",
        (f"{CARD}::test_a_home_cs_accepts_only_the_certificate_it_stored_before_using_a_slot",),
    ),
    Removal(
        "card-ca-serial-once",
        "the card CA certifies a card serial for one card (while its certificate is not revoked)",
        "jukinet/pki/ca.py",
        "        if live:\n            raise Rejected(\n                Problem.ALREADY_EXISTS,",
        "        if False:\n            raise Rejected(\n                Problem.ALREADY_EXISTS,",
        (f"{CARD_EVENTS}::test_the_card_ca_certifies_a_card_serial_once",),
    ),
    Removal(
        "card-event-index",
        "the national server checks every CS card event against its card index",
        "jukinet/server/national/cards.py",
        '            if problem:\n                message = f"card event {number + 1}',
        '            if False:\n                message = f"card event {number + 1}',
        (f"{CARD_EVENTS}::test_a_rogue_cs_cannot_revoke_another_municipalitys_card",),
    ),
    Removal(
        "card-event-municipality",
        "a card event acts only on a card of the municipality that set it up",
        "jukinet/server/card_events.py",
        "if card.municipality_code != event.municipality_code:",
        "if False:",
        (f"{CARD_EVENTS}::test_a_rogue_cs_cannot_revoke_another_municipalitys_card",),
    ),
    Removal(
        "card-event-own-serials",
        "a card event revokes only that card's own certificates",
        "jukinet/server/card_events.py",
        "    if foreign:\n",
        "    if False:\n",
        (f"{CARD_EVENTS}::test_a_cs_revokes_only_its_cards_own_certificates",),
    ),
    Removal(
        "card-event-set-up-once",
        "a card already indexed is never set up again",
        "jukinet/server/card_events.py",
        '    if event.kind == C.CARD_EVENT_KIND_SET_UP:\n        return f"card {event.card_serial} is already set up',
        '    if False:\n        return f"card {event.card_serial} is already set up',
        (f"{CARD_EVENTS}::test_no_second_set_up_and_no_events_for_unknown_cards",),
    ),
    Removal(
        "card-event-unknown",
        "an unknown card may only be set up",
        "jukinet/server/card_events.py",
        "if event.kind != C.CARD_EVENT_KIND_SET_UP:",
        "if False:",
        (f"{CARD_EVENTS}::test_no_second_set_up_and_no_events_for_unknown_cards",),
    ),
    Removal(
        "card-serial-width",
        "certificate serials in card events are below 2^159",
        "jukinet/server/card_events.py",
        " and 0 < int(text, 16) <= MAX_CERTIFICATE_SERIAL",
        "",
        (f"{CARD_EVENTS}::test_a_160_bit_serial_is_refused_before_the_card_ca",),
    ),
    Removal(
        "card-revocation-refused",
        "a revocation the card CA refuses is one refused item, never a stuck link",
        "jukinet/server/card_events.py",
        "except (ValueError, TypeError) as exc:",
        "except ZeroDivisionError as exc:",
        (f"{CARD_EVENTS}::test_a_revocation_the_card_ca_refuses_is_one_refused_item",),
    ),
    Removal(
        "code-change-owner",
        "a 住民票コード変更 notice only from the owner of the old code's record",
        "jukinet/domain/numbers.py",
        '    if _owner(former) != origin:\n        return Problem.DENIED, f"{what}: the resident is owned by',
        '    if False:\n        return Problem.DENIED, f"{what}: the resident is owned by',
        (f"{CODE_CHANGE}::test_forged_code_changes_are_refused",),
    ),
    Removal(
        "code-change-designated",
        "the new code of a 住民票コード変更 was designated to the origin to replace exactly that code",
        "jukinet/domain/numbers.py",
        "if facts.designated_to != origin or facts.replaces != old:",
        "if False:",
        (f"{CODE_CHANGE}::test_forged_code_changes_are_refused",),
    ),
    Removal(
        "code-change-unused",
        "the new code of a 住民票コード変更 holds no record yet (a replay is refused)",
        "jukinet/domain/numbers.py",
        '    if facts.current is not None:\n        return Problem.DENIED, f"{what}: code {code} is in use already"',
        '    if False:\n        return Problem.DENIED, f"{what}: code {code} is in use already"',
        (f"{CODE_CHANGE}::test_forged_code_changes_are_refused",),
    ),
    Removal(
        "code-change-old-code",
        "at the tiers, a code a 住民票コード変更 replaced is never used again",
        "jukinet/domain/numbers.py",
        "    if current is not None and ended_by_code_change(current):\n        late_removal",
        "    if False:\n        late_removal",
        (f"{CODE_CHANGE}::test_a_replayed_code_change_and_any_use_of_the_old_code_are_refused",),
    ),
    Removal(
        "code-change-one-use",
        "a code designated for a 住民票コード変更 serves that change only (no birth with it)",
        "jukinet/domain/numbers.py",
        "if current is None and facts.replaces is not None:",
        "if False:",
        (f"{CODE_CHANGE}::test_a_code_designated_for_a_change_serves_nothing_else",),
    ),
    Removal(
        "code-change-same-person",
        "a 住民票コード変更 changes only the code (name, birth date, sex, address carried over)",
        "jukinet/domain/changes.py",
        "if getattr(former, name) != getattr(change, name):",
        "if False:",
        (f"{CODE_CHANGE}::test_a_code_change_changes_only_the_code_and_keeps_the_number",),
    ),
    Removal(
        "code-change-cs-old-code",
        "at the CS, no change (creating or amending) uses a code a 住民票コード変更 replaced",
        "jukinet/domain/changes.py",
        "    if current is not None and ended_by_code_change(current):\n        raise FieldRejected(",
        "    if False:\n        raise FieldRejected(",
        (f"{CODE_CHANGE_E2E}::test_a_retry_is_idempotent_at_the_national_server_and_refused_at_the_cs",),
    ),
    Removal(
        "code-change-national-owner",
        "the national server changes the code only of the calling CS's own resident",
        "jukinet/server/national/numbers.py",
        "                self._owned(txn, str(cs), code)\n                replaced = ",
        "                replaced = ",
        (f"{CODE_CHANGE_E2E}::test_a_cs_may_not_change_another_municipalitys_resident",),
    ),
    Removal(
        "code-change-once",
        "the national server replaces a code once (another request for it is refused)",
        "jukinet/server/national/numbers.py",
        "if replaced is not None:",
        "if False:",
        (f"{CODE_CHANGE}::test_the_national_server_changes_a_code_once_and_never_designates_the_old_one_again",),
    ),
    Removal(
        "number-retired",
        "a My Number retired by a 個人番号変更 is refused for anyone at the tiers",
        "jukinet/domain/numbers.py",
        "if facts.number_retired and not kept:",
        "if False:",
        (f"{CODE_CHANGE}::test_a_retired_number_is_refused_for_anyone_but_a_change_recorded_before_it_arrives",),
    ),
    # -- review of issue 8 (findings 6, 9, 10) --------------------------------------------------------------
    Removal(
        "dv-measures-follow-move",
        "a member's DV support measures are registered at the new CS in the 転入's transaction",
        "jukinet/cs_node/moves.py",
        "self._carry_dv_measures(txn, code, members[code].dv_measures, grant, caller)",
        "pass",
        (f"{MOVES}::test_dv_support_measures_travel_with_the_move_and_keep_refusing",),
    ),
    Removal(
        "dv-measures-checked",
        "the DV support measures a 転出証明書情報 carries are the member's, valid, at most 16",
        INTAKE,
        "problems += dv_measures_problems(record.resident_code, member.dv_measures)",
        "pass",
        (f"{MOVES}::test_dv_support_measures_travel_with_the_move_and_keep_refusing",),
    ),
    Removal(
        "codes-unused-quota",
        "the national server designates a CS at most MAX_UNUSED_CODES codes no notice has used yet",
        "jukinet/server/national/numbers.py",
        "if self._max_unused is not None and unused + count > self._max_unused:",
        "if False:",
        ("tests/test_numbers.py::test_a_cs_cannot_flood_the_national_server_with_codes_or_number_changes",),
    ),
    Removal(
        "number-change-rate",
        "ChangeMyNumber is rate-limited per CS",
        "jukinet/server/national/numbers.py",
        "self._changes.take(str(cs))\n        start = ",
        "start = ",
        ("tests/test_numbers.py::test_a_cs_cannot_flood_the_national_server_with_codes_or_number_changes",),
    ),
    Removal(
        "directory-ask-national",
        "once half a directory's validity has passed, the national server is asked even if the upstream says "
        "not modified",
        "jukinet/server/runtime/directory.py",
        "elif directory.half_expired() and index + 1 < len(self._sources):",
        "elif False:",
        ("tests/test_directory.py::test_a_prefecture_saying_not_modified_cannot_freeze_the_directory",),
    ),  # -- batch queries (定期照会) ------------------------------------------------------------------------------
    Removal(
        "batch-legal-table-row",
        "a batch stream needs a legal-table row for its business, checked at its first chunk",
        "jukinet/server/national/batch.py",
        "row = self._tables().national(self.agency.corporate_number, business)\n        if row is None:",
        "row = self._tables().national(self.agency.corporate_number, business) or self._tables().rows[0]"
        "\n        if False:",
        ("tests/test_batch_e2e.py::test_no_legal_basis_is_denied_before_any_answer_and_nothing_is_logged",),
    ),
    Removal(
        "batch-row-every-chunk",
        "every chunk of a batch stream is decided by the legal tables held then (withdrawn: the stream ends)",
        "jukinet/server/national/batch.py",
        "            business = self.row.business\n",
        "            return self.row\n",
        ("tests/test_batch.py::test_every_chunk_is_decided_by_the_legal_tables_held_now",),
    ),
    Removal(
        "batch-resident-code-row",
        "a batch asks by 住民票コード only under a row that permits resident_code",
        "jukinet/server/national/batch.py",
        'if codes and not row.permits("resident_code"):',
        "if False:",
        ("tests/test_batch.py::test_every_chunk_is_decided_by_the_legal_tables_held_now",),
    ),
    Removal(
        "batch-stalled-reader",
        "a batch stream whose answer is not taken for 30 s is ended (its slot given back)",
        "jukinet/server/national/batch.py",
        "                consumer.cancel()\n",
        "                pass\n",
        ("tests/test_batch.py::test_a_stream_whose_answers_are_not_taken_gives_its_slot_back",),
    ),
    Removal(
        "batch-identifier-rows",
        "a batch of a pseudonymous row asks by its agency identifiers only, and only such a row asks by them",
        "jukinet/server/national/batch.py",
        "if bool(identifiers) != row.pseudonymous and asked:",
        "if False:",
        ("tests/test_batch.py::test_a_row_naming_residents_by_agency_identifier_asks_and_is_answered_by_them",),
    ),
    Removal(
        "batch-one-business",
        "a later chunk of a batch stream may not name another business",
        "jukinet/server/national/batch.py",
        "if business and business != self.row.business:",
        "if False:",
        ("tests/test_batch_e2e.py::test_a_stream_switching_business_is_refused_after_answering_what_came_before",),
    ),
    Removal(
        "batch-chunk-size",
        "at most 1,000 codes in a batch chunk",
        "jukinet/server/national/batch.py",
        "if len(asked) > MAX_BATCH_CHUNK_CODES:",
        "if False:",
        ("tests/test_batch_e2e.py::test_oversize_and_malformed_chunks_end_the_stream_and_the_node_keeps_serving",),
    ),
    Removal(
        "batch-redaction",
        "a batch answer holds only the fields the row permits",
        "jukinet/server/national/batch.py",
        "for name in FIELD_GROUPS[group])\n\n\n@dataclass(frozen=True)\nclass AskedChunk:",
        "for name in FIELD_GROUPS[group]) | {'my_number'}\n\n\n@dataclass(frozen=True)\nclass AskedChunk:",
        ("tests/test_batch_e2e.py::test_a_mixed_chunk_is_answered_in_order_with_a_status_per_code",),
    ),
    Removal(
        "batch-streams-per-agency",
        "at most 2 batch streams per agency",
        "jukinet/server/national/batch.py",
        "if self._open[key] >= self._per_agency:",
        "if False:",
        ("tests/test_batch_e2e.py::test_too_many_streams_from_one_agency_are_refused_while_the_others_keep_working",),
    ),
    Removal(
        "batch-flow-control",
        "a batch stream reads a chunk only with room for its answer (flow control)",
        "jukinet/server/national/batch.py",
        "await room.acquire()",
        "pass",
        ("tests/test_batch_e2e.py::test_a_client_that_never_reads_cannot_make_the_server_buffer_its_chunks",),
    ),
    # -- 開示 (disclosure) ---------------------------------------------------------------------------------
    Removal(
        "disclosure-card-recorded",
        "開示: the card presented is one the node recorded, may be presented now, with its recorded certificate",
        "jukinet/server/disclosure.py",
        "or presentable_problem(card, presented.card_serial) is not None or not _same(card, presented):",
        ":",
        (f"{DISCLOSURE}::test_the_card_decides_whose_entries_only_as_the_node_recorded_it",),
    ),
    Removal(
        "disclosure-cs-kept",
        "開示: the national server answers a CS only for a resident it keeps or kept",
        "jukinet/server/disclosure.py",
        "if not allowed(txn, code):",
        "if False:",
        (f"{DISCLOSURE_E2E}::test_a_cs_that_never_kept_the_resident_is_refused_by_the_national_server",),
    ),
    Removal(
        "disclosure-operator-site",
        "開示: a CS names only an operator of its own site to the national server",
        "jukinet/server/disclosure.py",
        "or operator.site != cs.code:",
        ":",
        (f"{DISCLOSURE_E2E}::test_a_cs_that_never_kept_the_resident_is_refused_by_the_national_server",),
    ),
    Removal(
        "disclosure-portal-only",
        "開示: ListMine only from a residents' portal",
        "jukinet/server/national/disclosure.py",
        "mine=portals, for_resident=Kinds.of(NodeKind.CS)",
        "mine=AnyOf((portals, terminals)), for_resident=Kinds.of(NodeKind.CS)",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-disclosure-counter",
        "the role disclose-provisions on the counter's request for provisions",
        "jukinet/cs_node/disclosure.py",
        "OperatorWithRole(TerminalOf.of_nodes([counter.node_id]), Role.DISCLOSE_PROVISIONS)",
        "OperatorWithRole(TerminalOf.of_nodes([counter.node_id]))",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "role-disclosure-copies",
        "the role disclose-provisions on a CS's ListForResident (its copy issuances)",
        "jukinet/cs_node/disclosure.py",
        "for_resident=OperatorWithRole(terminals, Role.DISCLOSE_PROVISIONS),",
        "for_resident=OperatorWithRole(terminals),",
        (f"{ACCESS}::test_every_cell_of_the_access_table",),
    ),
    Removal(
        "disclosure-signer-ca",
        "開示 client: the tree head's signing certificate is issued by the node CA",
        VERIFIER,
        "certificate.verify_directly_issued_by(self._node_ca)",
        "pass",
        (f"{DISCLOSURE}::test_a_tampered_or_foreign_tree_head_is_refused",),
    ),
    Removal(
        "disclosure-head-signature",
        "開示 client: the tree head is believed only with the node's signature",
        VERIFIER,
        "key.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))",
        "pass",
        (f"{DISCLOSURE}::test_a_tampered_or_foreign_tree_head_is_refused",),
    ),
    Removal(
        "disclosure-inclusion",
        "開示 client: each entry's inclusion proof leads to the tree head's root",
        VERIFIER,
        "merkle.verify_inclusion(merkle.leaf_hash(entry.leaf), index, size, list(entry.inclusion_path), root)",
        "pass",
        (f"{DISCLOSURE}::test_a_tampered_entry_index_or_path_is_refused",),
    ),
    Removal(
        "disclosure-consistency",
        "開示 client: the tree head extends the one seen before (consistency proof)",
        VERIFIER,
        "merkle.verify_consistency(seen.tree_size, size, seen.root, root, list(answer.consistency_proof))",
        "pass",
        (f"{DISCLOSURE}::test_consistency_with_the_head_seen_before",),
    ),
    Removal(
        "disclosure-entry-resident",
        "開示 client: every entry shown is the resident's",
        VERIFIER,
        "if number != index + 1 or leaf.resident_code not in codes:",
        "if number != index + 1:",
        (f"{DISCLOSURE}::test_another_residents_entry_is_refused_even_with_a_valid_proof",),
    ),
    Removal(
        "disclosure-failures-apart",
        "開示: a card presentation is verified before a bucket is taken; failures count in their own bucket",
        "jukinet/server/disclosure.py",
        "            presented = self._verifier.verify(card, CARD_PURPOSE, str(self.node_id), raw, self._known_card)\n",
        "            self._failures.take(portal)\n"
        "            presented = self._verifier.verify(card, CARD_PURPOSE, str(self.node_id), raw, self._known_card)\n",
        (f"{DISCLOSURE}::test_junk_presentations_do_not_stop_a_valid_resident",),
    ),
    Removal(
        "disclosure-cs-rate",
        "開示: a CS's rate is keyed on the CS alone, not on the operator names it sends",
        "jukinet/server/disclosure.py",
        "self._callers.take(str(caller.primary))  # the CS",
        'self._callers.take(f"{caller.primary}/{operator}")  # the CS',
        (f"{DISCLOSURE}::test_a_cs_cannot_escape_its_rate_by_naming_new_operators",),
    ),
    Removal(
        "disclosure-index-bounded",
        "開示: a page reads at most limit + 1 index keys per segment, from after_id on",
        "jukinet/storage/provisions.py",
        "if taken > limit:",
        "if False:",
        (
            "tests/test_provision_log.py::test_a_page_of_a_resident_with_many_provisions_reads_a_bounded_number_of_index_keys",
        ),
    ),
    Removal(
        "disclosure-index-code",
        "開示: a resident lookup drops an entry whose stored 住民票コード is not the one asked",
        "jukinet/storage/provisions.py",
        "if entry is not None and entry.resident_code == resident_code:",
        "if entry is not None:",
        ("tests/test_provision_log.py::test_an_index_key_naming_another_residents_leaf_discloses_nothing",),
    ),
    Removal(
        "disclosure-client-holder",
        "開示 client: ListMine's answer is for the card holder's 住民票コード the resident gave",
        VERIFIER,
        "verified = self._accept(answer, node_id, log, seen, after, holder)",
        "verified = self._accept(answer, node_id, log, seen, after, None)",
        (f"{DISCLOSURE}::test_the_resident_client_refuses_an_answer_for_another_or_spliced",),
    ),
    # -- the movement report (issue 9) ----------------------------------------------------------------------
    Removal(
        "role-statistics",
        "the role read-statistics on GetMovementReport",
        "jukinet/server/national/statistics.py",
        "OperatorWithRole(TerminalOf(frozenset(sites)), Role.READ_STATISTICS)",
        "OperatorWithRole(TerminalOf(frozenset(sites)))",
        ("tests/test_statistics_e2e.py::test_only_an_operator_with_the_role_reads_it_and_a_bad_month_is_refused",),
    ),
    Removal(
        "stats-birth-once",
        "a resident's birth and death count once in the movement report",
        "jukinet/server/national/statistics.py",
        "first = not self._marked(txn, code, kind, pending)",
        "first = True",
        ("tests/test_statistics.py::test_a_second_birth_or_death_of_one_resident_is_not_counted",),
    ),
    Removal(
        "stats-marks-bounded",
        "the movement follower decides a first birth/death by the resident's marks, not their whole history",
        "jukinet/server/national/statistics.py",
        "first = not self._marked(txn, code, kind, pending)",
        "first = not any(n.record.change_reason == reason for n in self._storage.history.before(txn, code, position))",
        ("tests/test_statistics.py::test_a_clerk_alternating_deaths_and_births_costs_the_follower_one_read_per_entry",),
    ),
    Removal(
        "stats-code-change-marks",
        "a 住民票コード変更 carries the resident's birth/death marks to the new code",
        "jukinet/server/national/statistics.py",
        "if self._marked(txn, old, kind, pending) and not self._marked(txn, code, kind, pending):",
        "if False:",
        ("tests/test_statistics.py::test_a_code_change_carries_the_marks_to_the_new_code",),
    ),
)


def apply(removal: Removal, root: Path) -> None:
    """Apply ``removal`` to the tree at ``root`` (its text must occur exactly once)."""
    path = root / removal.path
    text = path.read_text(encoding="utf-8")
    count = text.count(removal.old)
    if count != 1:
        raise SystemExit(f"{removal.name}: the text to remove occurs {count} times in {removal.path}")
    path.write_text(text.replace(removal.old, removal.new), encoding="utf-8")


def _copy(destination: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file() and not name.startswith(("node_modules/", ".venv/")):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def run(removal: Removal) -> tuple[str, str]:
    """("noticed" | "NOT NOTICED" | "error", summary) for one removal."""
    with tempfile.TemporaryDirectory(prefix=f"removal-{removal.name}-") as tmp:
        copy = Path(tmp)
        _copy(copy)
        apply(removal, copy)
        env = {**os.environ, "PYTHONPATH": str(copy)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *removal.tests]
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = re.sub(r"\s+in [\d.]+s.*$", "", lines[-1].strip("= ")) if lines else done.stderr[-300:]
    if done.returncode == 1:
        return "noticed", summary
    if done.returncode == 0:
        return "NOT NOTICED", summary
    return "error", f"pytest exit status {done.returncode}: {summary}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="removals to run (all by default)")
    parser.add_argument("--list", action="store_true", help="list the removals and exit")
    args = parser.parse_args(argv)
    chosen = [r for r in REMOVALS if not args.names or r.name in args.names]
    if args.list:
        for r in chosen:
            print(f"{r.name:22} {r.path}: {r.check}")
        return 0
    unknown = set(args.names) - {r.name for r in REMOVALS}
    if unknown:
        parser.error(f"unknown removals: {', '.join(sorted(unknown))}")
    bad = 0
    for removal in chosen:
        started = time.monotonic()
        outcome, summary = run(removal)
        bad += outcome != "noticed"
        print(f"{removal.name:22} {outcome:12} {summary} ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} removals noticed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
