"""Hypothesis profiles for the property-based tests, and the count of examples run per RPC family.

Two profiles, chosen by ``JUKINET_HYPOTHESIS_PROFILE``: ``ci`` (the default: a bounded, derandomized
number of examples, so the suite stays fast and reproducible) and ``long`` (``make properties``: many
more, random, with the example database). Every property module imports this one first, so the profile
is loaded before its tests are defined. The counts are printed at the end of the run by
``pytest_terminal_summary`` in tests/conftest.py. (No conftest.py here: the end-to-end tests import
helpers ``from conftest``, which a second conftest module would shadow.)
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("JUKINET_HYPOTHESIS_PROFILE", "ci")
# End-to-end examples wait on real RPCs (each with its own gRPC deadline), so hypothesis's per-example
# deadline is off; the shared network fixture is session-scoped, which hypothesis is fine with.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("ci", max_examples=20, derandomize=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=400, **_COMMON)
settings.load_profile(PROFILE)

EXAMPLES: Counter[str] = Counter()


def ran(family: str) -> None:
    """Count one example of ``family`` (called at the start of each example's body)."""
    EXAMPLES[family] += 1
