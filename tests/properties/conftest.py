"""Property-based tests (hypothesis): hostile, malformed, boundary and oversized input for every RPC family.

Two profiles, chosen by ``JUKINET_HYPOTHESIS_PROFILE``: ``ci`` (the default: a bounded, derandomized
number of examples, so the suite stays fast and reproducible) and ``long`` (``make properties``: many
more, random, with the example database). The number of examples run per RPC family is printed at the
end of the run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from propcount import EXAMPLES

# End-to-end examples wait on real RPCs (each with its own gRPC deadline), so hypothesis's per-example
# deadline is off; the shared network fixture is session-scoped, which hypothesis is fine with.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("ci", max_examples=20, derandomize=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("JUKINET_HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not EXAMPLES:
        return
    profile = os.environ.get("JUKINET_HYPOTHESIS_PROFILE", "ci")
    terminalreporter.section(f"hypothesis examples per RPC family (profile {profile})")
    for family, n in sorted(EXAMPLES.items()):
        terminalreporter.write_line(f"{family:<28} {n:>7}")
    terminalreporter.write_line(f"{'total':<28} {sum(EXAMPLES.values()):>7}")
