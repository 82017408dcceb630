"""The out-of-sample statistics of jukinet/biometrics/validation.py: exact binomial bounds, the
subject-level bootstrap (wider when errors cluster in few subjects), the threshold rule, disjoint
populations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jukinet.biometrics.validation import (
    Population,
    binomial_upper,
    evaluate,
    subject_bootstrap_upper,
    threshold_for_fmr,
)


def _cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize("n", [10, 300, 30_000])
def test_no_failure_gives_the_rule_of_three(n: int) -> None:
    upper = binomial_upper(0, n)
    assert math.isclose((1 - upper) ** n, 0.05, rel_tol=1e-9)
    assert upper < 3.0 / n  # -ln(0.05) = 2.996
    assert n < 300 or upper > 2.9 / n


@pytest.mark.parametrize(("k", "n"), [(1, 20), (3, 50), (10, 200), (40, 400)])
def test_clopper_pearson_upper_bound_is_exact(k: int, n: int) -> None:
    upper = binomial_upper(k, n)
    assert k / n < upper < 1
    assert math.isclose(_cdf(k, n, upper), 0.05, rel_tol=1e-6)
    assert binomial_upper(k + 1, n) > upper > binomial_upper(k, n * 2)


def test_binomial_upper_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        binomial_upper(3, 2)
    with pytest.raises(ValueError):
        binomial_upper(0, 0)
    assert binomial_upper(5, 5) == 1.0


def test_bootstrap_is_wider_when_errors_cluster_in_few_subjects() -> None:
    trials = np.full(200, 10)
    spread = np.zeros(200, dtype=int)
    spread[:20] = 1  # 20 errors, one in each of 20 subjects
    clustered = np.zeros(200, dtype=int)
    clustered[:2] = 10  # the same 20 errors, all in 2 subjects ("goats")
    rng = np.random.default_rng(5)
    narrow = subject_bootstrap_upper(spread, trials, rng)
    wide = subject_bootstrap_upper(clustered, trials, rng)
    assert 0.01 < narrow < wide
    # Treating the 2,000 comparisons as independent understates the clustered case.
    assert binomial_upper(20, 2000) < wide
    with pytest.raises(ValueError):
        subject_bootstrap_upper(spread, trials[:10], rng)


def test_threshold_for_fmr_accepts_at_most_the_target_share() -> None:
    scores = np.arange(1000, dtype=np.float64) / 1000  # 0.000 … 0.999
    t = threshold_for_fmr(scores, 0.005)  # at most 5 of 1000 may be at or above it
    assert np.count_nonzero(scores >= t) == 5 and 0.994 < t <= 0.995 + 1e-12
    assert np.count_nonzero(scores >= threshold_for_fmr(scores, 0.0)) == 0
    assert threshold_for_fmr(scores, 1.0) == 0.0


def test_populations_of_different_seeds_share_no_subject_and_evaluate_consistently() -> None:
    a = Population.draw(60, 3, seed=11)
    b = Population.draw(60, 3, seed=12)
    assert not (a.templates[:, None, :] == b.templates[None, :, :]).all(axis=2).any()
    assert a.genuine.shape == (60, 3) and a.pair_scores().shape == (30,)
    assert a.cross_scores(10).shape == (90,)
    result = evaluate(a, 0.45, np.random.default_rng(1), cross_block=20)
    assert result.fmr_pairs == 30 and result.cross_comparisons == 380
    assert result.genuine_comparisons == 180
    assert result.fnmr == result.false_non_matches / 180
    assert result.fmr_upper == binomial_upper(result.fmr_false_matches, 30)
    assert np.median(a.genuine) > 0.6 and abs(float(np.mean(a.pair_scores()))) < 0.1
