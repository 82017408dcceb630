"""Tests for jukinet.biometrics: validation, matching, template encoding and the synthetic model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jukinet.biometrics import (
    DEFAULT_THRESHOLD,
    FEATURE_DIM,
    TEMPLATE_BYTES,
    InvalidBiometric,
    Matcher,
    SyntheticSubject,
    decode_template,
    encode_template,
    enroll,
    sample_problem,
)
from jukinet.biometrics.evaluation import equal_error_rate, evaluate_population, independent_fmr
from jukinet.domain.errors import Problem, Rejected


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def test_genuine_capture_matches_own_template(rng: np.random.Generator) -> None:
    matcher = Matcher()
    subject = SyntheticSubject.create(rng)
    template = enroll(subject, rng)
    sample = subject.capture(rng)
    assert sample.dtype == np.float32 and sample.shape == (FEATURE_DIM,)
    assert math.isclose(float(np.linalg.norm(sample)), 1.0, rel_tol=1e-5)
    assert matcher.similarity(template, sample) > 0.6
    assert matcher.matches(template, sample)
    assert matcher.matches(template.tolist(), [float(v) * 7.5 for v in sample])  # sequences, any scale


def test_other_subjects_capture_does_not_match(rng: np.random.Generator) -> None:
    matcher = Matcher()
    alice, bob = SyntheticSubject.create(rng), SyntheticSubject.create(rng)
    template = enroll(alice, rng)
    for _ in range(20):
        assert not matcher.matches(template, bob.capture(rng))
    assert abs(matcher.similarity(template, bob.capture(rng))) < 0.35


def test_threshold_boundary_and_range() -> None:
    v = np.zeros(FEATURE_DIM)
    v[0] = 1.0
    w = np.zeros(FEATURE_DIM)
    w[0], w[1] = 3.0, 4.0  # cosine 3/5, computed exactly
    assert Matcher(threshold=0.6).matches(v, w)
    assert not Matcher(threshold=0.61).matches(v, w)
    assert Matcher().similarity(v, -v) == -1.0
    with pytest.raises(ValueError, match="threshold"):
        Matcher(threshold=1.5)


def test_sample_problem_messages(rng: np.random.Generator) -> None:
    good = SyntheticSubject.create(rng).capture(rng)
    assert sample_problem(good) is None
    assert sample_problem(list(good)) is None
    assert sample_problem([0.1] * 12) == "a biometric sample has 128 features, got 12"
    nan = good.copy()
    nan[3] = np.nan
    assert sample_problem(nan) == "a biometric sample contains NaN or infinite values"
    inf = list(good)
    inf[0] = float("inf")
    assert sample_problem(inf) == "a biometric sample contains NaN or infinite values"
    assert sample_problem(np.zeros(FEATURE_DIM)) == "a biometric sample is the zero vector"
    assert "shape (2, 64)" in (sample_problem(np.ones((2, 64))) or "")
    assert "numbers" in (sample_problem(["a"] * FEATURE_DIM) or "")


def test_matcher_rejects_malformed_inputs(rng: np.random.Generator) -> None:
    template = enroll(SyntheticSubject.create(rng), rng)
    with pytest.raises(InvalidBiometric, match="a biometric sample has 128 features, got 12"):
        Matcher().matches(template, [1.0] * 12)
    with pytest.raises(InvalidBiometric, match="template is the zero vector"):
        Matcher().matches(np.zeros(FEATURE_DIM), template)
    assert issubclass(InvalidBiometric, Rejected) and InvalidBiometric("x").problem is Problem.INVALID


def test_encode_decode_round_trip(rng: np.random.Generator) -> None:
    template = enroll(SyntheticSubject.create(rng), rng)
    data = encode_template(template)
    assert isinstance(data, bytes) and len(data) == TEMPLATE_BYTES == FEATURE_DIM * 4
    assert data == template.astype("<f4").tobytes()  # float32 little-endian, already unit length
    decoded = decode_template(data)
    assert decoded.dtype == np.float32 and decoded.shape == (FEATURE_DIM,)
    np.testing.assert_array_equal(decoded, template)
    assert encode_template(decoded) == data
    # Encoding normalises, so a scaled template encodes to the same unit vector.
    np.testing.assert_allclose(decode_template(encode_template(template * 3.0)), template, rtol=1e-6)


def test_decode_validates(rng: np.random.Generator) -> None:
    data = encode_template(enroll(SyntheticSubject.create(rng), rng))
    with pytest.raises(InvalidBiometric, match=f"is {TEMPLATE_BYTES} bytes, got {TEMPLATE_BYTES - 1}"):
        decode_template(data[:-1])
    with pytest.raises(InvalidBiometric, match="got 0"):
        decode_template(b"")
    with pytest.raises(InvalidBiometric, match="zero vector"):
        decode_template(bytes(TEMPLATE_BYTES))
    with pytest.raises(InvalidBiometric, match="NaN"):
        decode_template(np.full(FEATURE_DIM, np.nan, dtype="<f4").tobytes())
    with pytest.raises(InvalidBiometric, match="bytes"):
        decode_template("not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidBiometric, match="128 features, got 3"):
        encode_template([1.0, 2.0, 3.0])


def test_subject_serialisation_reproduces_captures(rng: np.random.Generator) -> None:
    subject = SyntheticSubject.create(rng)
    restored = SyntheticSubject.from_bytes(subject.to_bytes())
    assert restored.quality == subject.quality
    np.testing.assert_array_equal(restored.trait, subject.trait)
    np.testing.assert_array_equal(restored.drift, subject.drift)
    assert restored.to_bytes() == subject.to_bytes()
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(5):
        np.testing.assert_array_equal(subject.capture(a), restored.capture(b))
    np.testing.assert_array_equal(enroll(subject, a), enroll(restored, b))


def test_subject_from_bytes_validates(rng: np.random.Generator) -> None:
    data = SyntheticSubject.create(rng).to_bytes()
    with pytest.raises(InvalidBiometric, match="bytes, got"):
        SyntheticSubject.from_bytes(data[:-8])
    with pytest.raises(InvalidBiometric, match="magic"):
        SyntheticSubject.from_bytes(b"XXXX" + data[4:])


def test_subjects_differ_and_have_skewed_quality(rng: np.random.Generator) -> None:
    qualities = np.array([SyntheticSubject.create(rng).quality for _ in range(2000)])
    assert qualities.min() > 0
    assert np.mean(qualities) > np.median(qualities)  # right-skewed: a tail of hard subjects


def test_small_population_meets_loose_targets() -> None:
    ev = evaluate_population(300, genuine_per_subject=5, seed=3)
    assert ev.threshold == DEFAULT_THRESHOLD
    assert ev.genuine.size == 1500 and ev.impostor.size == 300 * 299
    assert ev.fmr <= 1e-3
    assert ev.fnmr <= 3e-2
    assert 0.7 < float(np.median(ev.genuine)) < 0.9
    assert abs(float(ev.impostor.std()) - 1 / math.sqrt(FEATURE_DIM)) < 0.005
    # The distributions overlap plausibly: a much stricter threshold rejects some genuine captures.
    assert np.mean(ev.genuine < 0.6) > ev.fnmr
    eer, eer_threshold = ev.eer()
    assert eer < 0.01 and 0.2 < eer_threshold < 0.5
    # The vectorised scores agree with the Matcher.
    rng = np.random.default_rng(3)
    subject = SyntheticSubject.create(rng)
    template = enroll(subject, rng)
    sample = subject.capture(rng)
    expected = float(template.astype(np.float64) @ sample.astype(np.float64))
    assert math.isclose(Matcher().similarity(template, sample), expected, rel_tol=1e-6)


def test_equal_error_rate_and_model_tail() -> None:
    eer, t = equal_error_rate(np.array([0.6, 0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert eer == 0.0 and 0.4 < t <= 0.6
    eer, _ = equal_error_rate(np.array([0.2, 0.6, 0.7, 0.8]), np.array([0.1, 0.3, 0.4, 0.5]))
    assert math.isclose(eer, 0.25)
    assert math.isclose(independent_fmr(0.0), 0.5, rel_tol=1e-6)
    assert independent_fmr(DEFAULT_THRESHOLD) < 1e-6
