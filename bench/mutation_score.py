"""The mutation score of the last `make mutation` run, per module and in all, from mutmut's results in
mutants/ (run from the repository root). Killed and timed-out mutants count as detected; mutants no
selected test reaches ("no tests") are listed apart: they are gaps of the unit-test selection, which
the end-to-end tests (running in node processes mutmut cannot reach) may still cover. Last line: one
JSON object.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results in mutants/: run `make mutation` first", file=sys.stderr)
        return 1
    total: Counter[str] = Counter()
    for meta in metas:
        module = str(meta.relative_to("mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_by_exit_code[code] for code in codes.values())
        total.update(counts)
        detected = counts["killed"] + counts["timeout"]
        tested = detected + counts["survived"]
        score = f"{100 * detected / tested:5.1f} %" if tested else "    -"
        print(
            f"{module:<40} {score}  killed {counts['killed']:>4}  timeout {counts['timeout']:>3}  "
            f"survived {counts['survived']:>4}  no tests {counts['no tests']:>4}  not run {counts['not checked']:>4}"
        )
    detected = total["killed"] + total["timeout"]
    tested = detected + total["survived"]
    print(
        json.dumps(
            {
                "bench": "mutation",
                "mutants": sum(total.values()),
                "killed": total["killed"],
                "timeout": total["timeout"],
                "survived": total["survived"],
                "no_tests": total["no tests"],
                "not_checked": total["not checked"],
                "score": round(detected / tested, 4) if tested else None,
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
