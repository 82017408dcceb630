"""Out-of-sample error rates: the threshold is chosen on one set of subjects, FMR and FNMR are measured
on a disjoint one, with upper bounds that hold although comparisons sharing a subject are correlated.

Why not the usual binomial bound over all comparisons: a subject's probe is compared with every other
template and its template with every other probe, and a subject's genuine captures share its template
and its quality (the "goats" of the model fail together). Counting N·(N−1) impostor or N·k genuine
comparisons as independent trials overstates what the data show by orders of magnitude. So:

* **FMR: an exact binomial (Clopper–Pearson) bound over disjoint pairs of subjects.** The evaluation
  subjects are paired off, (1, 2), (3, 4), …, and in each pair one probe of the first is compared with
  the template of the second. No two of these comparisons share a subject, and subjects are drawn
  independently, so they are independent Bernoulli trials and the bound is exact; with no false match
  it is the "rule of 3" (≈ 3/pairs at 95 %), computed exactly. False matches are rare, so a bootstrap
  over subjects would resample zeros and bound nothing; the disjoint pairs need more subjects instead
  (synthetic ones cost little). The count over all cross comparisons of a block of subjects is
  reported too, as an observation, not as the basis of a bound.
* **FNMR: a subject-level (cluster) bootstrap.** Subjects are resampled with replacement, each bringing
  all of its genuine comparisons, and the FNMR of each resample is recomputed; the 95th percentile is
  the one-sided 95 % upper bound. Genuine errors are frequent enough (tens to hundreds) for the
  percentile bound to be meaningful, and resampling whole subjects keeps their correlation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jukinet.biometrics.emulation import SyntheticSubject, enroll
from jukinet.biometrics.matching import FEATURE_DIM


def binomial_upper(failures: int, trials: int, confidence: float = 0.95) -> float:
    """Exact one-sided Clopper–Pearson upper bound on a rate from ``failures`` in ``trials`` independent
    trials: the p at which P(X ≤ failures) = 1 − confidence. With no failures it is 1 − (1 − c)^(1/n)
    (≈ 3/n at 95 %: the rule of 3)."""
    if trials <= 0 or not 0 <= failures <= trials:
        raise ValueError(f"need 0 <= failures <= trials and trials > 0, got {failures} of {trials}")
    alpha = 1.0 - confidence
    if failures == trials:
        return 1.0
    if failures == 0:
        return 1.0 - alpha ** (1.0 / trials)

    def cdf(p: float) -> float:  # P(X <= failures) for X ~ Binomial(trials, p), summed in log space
        logs = [
            math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
            + k * math.log(p) + (trials - k) * math.log1p(-p)
            for k in range(failures + 1)
        ]  # fmt: skip
        top = max(logs)
        return math.exp(top) * sum(math.exp(v - top) for v in logs)

    lo, hi = failures / trials, 1.0
    for _ in range(100):  # the cdf falls as p rises: bisect for cdf(p) = alpha
        mid = (lo + hi) / 2
        if cdf(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def subject_bootstrap_upper(
    errors_per_subject: np.ndarray,
    trials_per_subject: np.ndarray,
    rng: np.random.Generator,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> float:
    """One-sided upper bound on a rate by resampling subjects (clusters), each with all of its trials."""
    errors = np.asarray(errors_per_subject, dtype=np.float64)
    trials = np.asarray(trials_per_subject, dtype=np.float64)
    if errors.shape != trials.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError("errors and trials are per subject: two 1-d arrays of one length")
    picks = rng.integers(0, errors.size, size=(resamples, errors.size))
    rates = errors[picks].sum(axis=1) / trials[picks].sum(axis=1)
    return float(np.quantile(rates, confidence))


def threshold_for_fmr(impostor: np.ndarray, target_fmr: float) -> float:
    """The lowest threshold whose empirical FMR on ``impostor`` scores (accepted: score ≥ threshold) is at
    most ``target_fmr``: just above the k-th highest score, k = ⌊target · n⌋ + 1."""
    scores = np.sort(np.asarray(impostor, dtype=np.float64).ravel())[::-1]
    allowed = math.floor(target_fmr * scores.size)
    if allowed >= scores.size:
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


@dataclass(frozen=True)
class Population:
    """Enrolled synthetic subjects: templates (n, d), one impostor probe each (n, d), and the scores of
    ``k`` fresh genuine captures against their own template (n, k). Captures are scored as they are
    drawn, so a population of tens of thousands costs tens of megabytes."""

    templates: np.ndarray
    probes: np.ndarray
    genuine: np.ndarray

    @classmethod
    def draw(cls, subjects: int, genuine_per_subject: int, seed: int, enroll_captures: int = 3) -> Population:
        """``subjects`` new subjects from their own generator: populations of different seeds share no one."""
        if subjects < 2 or genuine_per_subject < 1:
            raise ValueError("a population needs at least 2 subjects and 1 genuine capture each")
        rng = np.random.default_rng(seed)
        templates = np.empty((subjects, FEATURE_DIM), dtype=np.float32)
        probes = np.empty((subjects, FEATURE_DIM), dtype=np.float32)
        genuine = np.empty((subjects, genuine_per_subject), dtype=np.float64)
        for i in range(subjects):
            person = SyntheticSubject.create(rng)
            templates[i] = enroll(person, rng, enroll_captures)
            captures = np.stack([person.capture(rng) for _ in range(genuine_per_subject)]).astype(np.float64)
            genuine[i] = captures @ templates[i].astype(np.float64)
            probes[i] = person.capture(rng)
        return cls(templates, probes, np.clip(genuine, -1.0, 1.0))

    @property
    def size(self) -> int:
        return self.templates.shape[0]

    def pair_scores(self) -> np.ndarray:
        """Impostor scores of disjoint pairs: probe of subject 2i against the template of 2i + 1 (independent)."""
        half = self.size // 2
        probes = self.probes[0 : 2 * half : 2].astype(np.float64)
        templates = self.templates[1 : 2 * half : 2].astype(np.float64)
        return np.clip(np.einsum("sd,sd->s", probes, templates), -1.0, 1.0)

    def cross_scores(self, block: int) -> np.ndarray:
        """All impostor scores among the first ``block`` subjects (correlated: an observation only)."""
        b = min(block, self.size)
        scores = self.probes[:b].astype(np.float64) @ self.templates[:b].astype(np.float64).T
        return np.clip(scores[~np.eye(b, dtype=bool)], -1.0, 1.0)


@dataclass(frozen=True)
class OutOfSample:
    """Error rates at one threshold on the evaluation population, with their 95 % upper bounds."""

    threshold: float
    fmr_pairs: int
    fmr_false_matches: int
    fmr: float
    fmr_upper: float  # Clopper–Pearson over disjoint pairs
    cross_comparisons: int
    cross_false_matches: int
    genuine_comparisons: int
    false_non_matches: int
    fnmr: float
    fnmr_upper: float  # subject-level bootstrap
    subjects_with_false_non_match: int


def evaluate(population: Population, threshold: float, rng: np.random.Generator, cross_block: int) -> OutOfSample:
    """FMR and FNMR of ``population`` at ``threshold``, with bounds valid for correlated comparisons."""
    pairs = population.pair_scores()
    false_matches = int(np.count_nonzero(pairs >= threshold))
    cross = population.cross_scores(cross_block)
    genuine = population.genuine
    misses = np.count_nonzero(genuine < threshold, axis=1)
    trials = np.full(misses.shape, genuine.shape[1])
    return OutOfSample(
        threshold=float(threshold),
        fmr_pairs=int(pairs.size),
        fmr_false_matches=false_matches,
        fmr=false_matches / pairs.size,
        fmr_upper=binomial_upper(false_matches, int(pairs.size)),
        cross_comparisons=int(cross.size),
        cross_false_matches=int(np.count_nonzero(cross >= threshold)),
        genuine_comparisons=int(genuine.size),
        false_non_matches=int(misses.sum()),
        fnmr=float(misses.sum() / genuine.size),
        fnmr_upper=subject_bootstrap_upper(misses, trials, rng),
        subjects_with_false_non_match=int(np.count_nonzero(misses)),
    )
