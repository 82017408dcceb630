"""Vectorised FMR / FNMR / EER evaluation of the matcher on a synthetic population."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jukinet.biometrics.emulation import SyntheticSubject, enroll
from jukinet.biometrics.matching import DEFAULT_THRESHOLD, FEATURE_DIM


@dataclass(frozen=True)
class Evaluation:
    """Scores of one evaluation run and the error rates derived from them."""

    subjects: int
    threshold: float
    genuine: np.ndarray
    """Genuine scores, shape (subjects, genuine_per_subject): fresh captures vs own template."""
    impostor: np.ndarray
    """Impostor scores, flat: each subject's probe capture vs every other subject's template."""
    qualities: np.ndarray

    @property
    def fmr(self) -> float:
        """False match rate: fraction of impostor scores at or above the threshold."""
        return float(np.count_nonzero(self.impostor >= self.threshold)) / self.impostor.size

    @property
    def fnmr(self) -> float:
        """False non-match rate: fraction of genuine scores below the threshold."""
        return float(np.count_nonzero(self.genuine < self.threshold)) / self.genuine.size

    def eer(self) -> tuple[float, float]:
        """Equal error rate and the threshold where it occurs (swept over all observed scores)."""
        return equal_error_rate(self.genuine.ravel(), self.impostor)


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): the point where FMR(t) and FNMR(t) cross, interpolated between candidate thresholds."""
    g = np.sort(np.asarray(genuine, dtype=np.float64).ravel())
    i = np.sort(np.asarray(impostor, dtype=np.float64).ravel())
    candidates = np.unique(np.concatenate([g, i[i >= g[0]]]))
    fnmr = np.searchsorted(g, candidates, side="left") / g.size  # scores < t are rejected
    fmr = 1.0 - np.searchsorted(i, candidates, side="left") / i.size  # scores >= t are accepted
    k = int(np.argmax(fnmr >= fmr))  # first threshold where FNMR has caught up with FMR
    if k == 0:
        return float((fmr[0] + fnmr[0]) / 2), float(candidates[0])
    d0, d1 = fmr[k - 1] - fnmr[k - 1], fmr[k] - fnmr[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.5
    eer = fnmr[k - 1] + w * (fnmr[k] - fnmr[k - 1])
    return float(eer), float(candidates[k - 1] + w * (candidates[k] - candidates[k - 1]))


def independent_fmr(threshold: float, dim: int = FEATURE_DIM) -> float:
    """Exact P(cos ≥ threshold) for two independent isotropic vectors in `dim` dimensions.

    The density of the cosine is proportional to (1 − x²)^((dim − 3)/2); integrated numerically. This is the
    model's impostor distribution, so it extrapolates FMR below what a finite evaluation can observe.
    """
    if threshold >= 1.0:
        return 0.0
    x = np.linspace(-1.0, 1.0, 400_001)
    density = (1.0 - x * x) ** ((dim - 3) / 2)
    steps = (density[1:] + density[:-1]) / 2
    upper = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])  # mass above each grid point
    return float(np.interp(threshold, x, upper) / upper[0])


def evaluate_population(
    subjects: int,
    genuine_per_subject: int = 10,
    seed: int = 1,
    threshold: float = DEFAULT_THRESHOLD,
    enroll_captures: int = 3,
) -> Evaluation:
    """Draw `subjects` synthetic subjects, enrol them and score genuine and impostor comparisons.

    Genuine: `genuine_per_subject` fresh captures of each subject against their own template.
    Impostor: one further probe capture of each subject against every other subject's template
    (subjects × (subjects − 1) comparisons, one matrix product).
    """
    if subjects < 2 or genuine_per_subject < 1:
        raise ValueError("an evaluation needs at least 2 subjects and 1 genuine capture per subject")
    rng = np.random.default_rng(seed)
    population = [SyntheticSubject.create(rng) for _ in range(subjects)]
    templates = np.stack([enroll(s, rng, enroll_captures) for s in population]).astype(np.float64)
    captures = np.stack(
        [np.stack([s.capture(rng) for _ in range(genuine_per_subject + 1)]) for s in population]
    ).astype(np.float64)
    genuine = np.einsum("skd,sd->sk", captures[:, :genuine_per_subject], templates)
    probes = captures[:, genuine_per_subject]
    scores = probes @ templates.T  # cosine similarity: all vectors are unit length
    impostor = scores[~np.eye(subjects, dtype=bool)]
    return Evaluation(
        subjects=subjects,
        threshold=float(threshold),
        genuine=np.clip(genuine, -1.0, 1.0),
        impostor=np.clip(impostor, -1.0, 1.0),
        qualities=np.array([s.quality for s in population]),
    )
