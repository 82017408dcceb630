"""Biometric matcher evaluation on the synthetic population of jukinet.biometrics.emulation.

Draws --subjects synthetic subjects, enrols each (mean of 3 captures), then scores
--genuine-per-subject fresh captures of each subject against their own template (genuine) and one
further capture of each subject against every other subject's template (impostor; one matrix
product, subjects × (subjects − 1) comparisons). Reports FMR and FNMR at --threshold and the EER.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from jukinet.biometrics import DEFAULT_THRESHOLD, FEATURE_DIM, Matcher, SyntheticSubject, enroll
from jukinet.biometrics.evaluation import evaluate_population, independent_fmr

NIST_FMR = 1e-4
NIST_FNMR = 1e-2


def _match_timing(rng: np.random.Generator, n: int = 20000) -> float:
    """Mean seconds per Matcher.matches call on float32 sample and template arrays."""
    subject = SyntheticSubject.create(rng)
    template = enroll(subject, rng)
    samples = [subject.capture(rng) for _ in range(n)]
    matcher = Matcher()
    start = time.perf_counter()
    for sample in samples:
        matcher.matches(template, sample)
    return (time.perf_counter() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=2000, help="population size (at least 1000)")
    parser.add_argument("--genuine-per-subject", type=int, default=10, help="fresh captures per subject")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the population")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="acceptance threshold")
    args = parser.parse_args()
    if args.subjects < 1000:
        parser.error("--subjects must be at least 1000")
    if args.genuine_per_subject < 1:
        parser.error("--genuine-per-subject must be at least 1")
    if not -1.0 <= args.threshold <= 1.0:
        parser.error("--threshold must lie in [-1, 1]")

    start = time.perf_counter()
    ev = evaluate_population(args.subjects, args.genuine_per_subject, args.seed, args.threshold)
    scored = time.perf_counter() - start
    eer, eer_threshold = ev.eer()
    elapsed = time.perf_counter() - start
    genuine, impostor = ev.genuine.ravel(), ev.impostor
    fmr, fnmr = ev.fmr, ev.fnmr

    # Weak subjects: the decile with the worst quality factor (noisiest captures).
    goats = ev.qualities >= np.quantile(ev.qualities, 0.9)
    goat_fnmr = float(np.mean(ev.genuine[goats] < args.threshold))
    per_subject_errors = np.count_nonzero(ev.genuine < args.threshold, axis=1)
    per_match = _match_timing(np.random.default_rng(args.seed + 1))

    print(f"population: {ev.subjects} subjects, {FEATURE_DIM} features, seed {args.seed}")
    print(f"comparisons: {genuine.size} genuine, {impostor.size} impostor (scored in {scored:.2f} s)")
    print(
        f"genuine scores:  mean {genuine.mean():.4f} sd {genuine.std():.4f}  "
        f"p1 {np.percentile(genuine, 1):.4f} p10 {np.percentile(genuine, 10):.4f} "
        f"median {np.median(genuine):.4f}  worst {genuine.min():.4f}"
    )
    print(
        f"impostor scores: mean {impostor.mean():.5f} sd {impostor.std():.5f} "
        f"(1/sqrt({FEATURE_DIM}) = {1 / np.sqrt(FEATURE_DIM):.5f})  highest {impostor.max():.4f}"
    )
    print(
        f"threshold {args.threshold}: FMR {fmr:.3g} ({np.count_nonzero(impostor >= args.threshold)} false matches; "
        f"limit {NIST_FMR:g}), FNMR {fnmr:.3g} ({np.count_nonzero(genuine < args.threshold)} false non-matches; "
        f"limit {NIST_FNMR:g})"
    )
    model_fmr = independent_fmr(args.threshold)
    print(f"model FMR at {args.threshold} (exact tail of the impostor distribution): {model_fmr:.2g}")
    print(
        f"weakest-quality decile: FNMR {goat_fnmr:.3g}; subjects with any false non-match: "
        f"{np.count_nonzero(per_subject_errors)} of {ev.subjects}"
    )
    print(f"EER {eer:.3g} at threshold {eer_threshold:.4f}")
    print(f"Matcher.matches: {per_match * 1e6:.1f} µs per sample; evaluation {elapsed:.2f} s")
    verdict = "meets" if fmr <= NIST_FMR and fnmr <= NIST_FNMR else "DOES NOT MEET"
    print(f"{verdict} SP 800-63B-4 (FMR ≤ {NIST_FMR:g}, FNMR ≤ {NIST_FNMR:g})")
    print(
        json.dumps(
            {
                "bench": "biometric",
                "subjects": ev.subjects,
                "genuine_comparisons": int(genuine.size),
                "impostor_comparisons": int(impostor.size),
                "fmr": fmr,
                "fnmr": fnmr,
                "eer": eer,
                "threshold": args.threshold,
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
