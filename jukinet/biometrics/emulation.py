"""Synthetic biometric subjects: a stand-in for a real sensor and feature extractor.

Model (all vectors in R^FEATURE_DIM, FEATURE_DIM = 128):

* Each subject has a **trait** t, a uniformly random unit vector: the "true" embedding of the person.
  Two unrelated unit vectors in 128 dimensions have a cosine similarity that is approximately
  N(0, 1/sqrt(128)) (sd ≈ 0.088), which is the impostor distribution.
* Each subject has a **quality** factor q that scales all of their capture noise. It is log-normal
  (median 1, sigma QUALITY_SIGMA), i.e. right-skewed: most people are easy, a tail of "goats"
  (worn fingerprints, unusual faces) is markedly noisier and produces most false non-matches.
* Each subject has a small **systematic drift** vector δ (a fixed direction orthogonal to the trait,
  with a per-subject magnitude ~|N(0, DRIFT_SD)|): a habitual presentation bias (finger rotated
  the same way, head tilted). Every capture is displaced along δ by a random amount a·δ, a ~ N(0, 1).
  Unlike the isotropic noise, which is almost orthogonal between any two captures, this component
  lies on the same axis in enrollment and verification captures, so it can pull them apart
  (opposite signs) or together: it widens the per-subject genuine distribution.
* One **capture** is x = t + a·δ + s·n, L2-normalised, where n ~ N(0, I/FEATURE_DIM) (‖n‖ ≈ 1) and the
  per-capture noise strength s = BASE_NOISE · q · m, with m log-normal (sigma CAPTURE_SIGMA) for
  ordinary capture-to-capture variation, times POOR_CAPTURE_FACTOR with probability
  POOR_CAPTURE_RATE (motion blur, partial finger, bad lighting).
* **Enrollment** takes a few captures and stores their normalised mean, which averages away part
  of the noise, as real enrollment does.

With these parameters a typical subject's genuine similarity is ≈ 1/sqrt((1+s²)(1+s²/3)) ≈ 0.8;
the population's genuine scores span roughly 0.6–0.9 with a real lower tail from goats and poor
captures that overlaps the impostor tail below ~0.4. bench/biometric_eval.py measures FMR, FNMR and
the EER of this model; see DEFAULT_THRESHOLD in jukinet.biometrics.matching for the figures.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from jukinet.biometrics.matching import FEATURE_DIM, InvalidBiometric

BASE_NOISE = 0.55
"""Noise norm of a typical capture of a median-quality subject, relative to the (unit) trait."""
QUALITY_SIGMA = 0.25
"""Sigma of the log-normal per-subject quality factor (skew → a tail of hard subjects)."""
CAPTURE_SIGMA = 0.2
"""Sigma of the log-normal capture-to-capture variation of the noise strength."""
POOR_CAPTURE_RATE = 0.04
"""Probability that a capture is a poor one."""
POOR_CAPTURE_FACTOR = 1.7
"""Noise multiplier of a poor capture."""
DRIFT_SD = 0.12
"""Scale of the per-subject systematic drift magnitude (half-normal)."""

_MAGIC = b"JKBS"
_VERSION = 1
_HEADER = struct.Struct("<4sBd")
_SUBJECT_BYTES = _HEADER.size + 2 * FEATURE_DIM * 8


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v @ v)


@dataclass(frozen=True, eq=False)
class SyntheticSubject:
    """A synthetic person: trait vector, systematic drift vector and noise quality factor."""

    trait: np.ndarray
    drift: np.ndarray
    quality: float

    def __post_init__(self) -> None:
        trait = np.array(self.trait, dtype=np.float64)
        drift = np.array(self.drift, dtype=np.float64)
        if trait.shape != (FEATURE_DIM,) or drift.shape != (FEATURE_DIM,):
            raise InvalidBiometric(f"a synthetic subject has {FEATURE_DIM}-feature trait and drift vectors")
        if not (np.isfinite(trait).all() and np.isfinite(drift).all() and math.isfinite(self.quality)):
            raise InvalidBiometric("a synthetic subject contains NaN or infinite values")
        if abs(float(trait @ trait) - 1.0) > 1e-9:
            raise InvalidBiometric("a synthetic subject's trait must be a unit vector")
        if not self.quality > 0:
            raise InvalidBiometric(f"a synthetic subject's quality factor must be positive, got {self.quality}")
        trait.flags.writeable = False
        drift.flags.writeable = False
        object.__setattr__(self, "trait", trait)
        object.__setattr__(self, "drift", drift)
        object.__setattr__(self, "quality", float(self.quality))

    @classmethod
    def create(cls, rng: np.random.Generator) -> SyntheticSubject:
        """Draw a new subject from the synthetic population."""
        trait = _unit(rng.standard_normal(FEATURE_DIM))
        direction = rng.standard_normal(FEATURE_DIM)
        direction = _unit(direction - (direction @ trait) * trait)
        drift = direction * abs(rng.normal(0.0, DRIFT_SD))
        quality = float(rng.lognormal(0.0, QUALITY_SIGMA))
        return cls(trait=trait, drift=drift, quality=quality)

    def noise_scale(self, rng: np.random.Generator) -> float:
        """Draw the noise strength of one capture (consumes two random numbers)."""
        scale = BASE_NOISE * self.quality * float(rng.lognormal(0.0, CAPTURE_SIGMA))
        if rng.random() < POOR_CAPTURE_RATE:
            scale *= POOR_CAPTURE_FACTOR
        return scale

    def capture(self, rng: np.random.Generator) -> np.ndarray:
        """One sensor capture: trait + drift + noise, L2-normalised, as float32."""
        scale = self.noise_scale(rng)
        shift = rng.standard_normal()
        noise = rng.standard_normal(FEATURE_DIM) * (scale / math.sqrt(FEATURE_DIM))
        return _unit(self.trait + shift * self.drift + noise).astype(np.float32)

    def to_bytes(self) -> bytes:
        """Serialise exactly (float64), so a restored subject gives identical captures."""
        return (
            _HEADER.pack(_MAGIC, _VERSION, self.quality)
            + self.trait.astype("<f8").tobytes()
            + self.drift.astype("<f8").tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SyntheticSubject:
        """Inverse of to_bytes; raise InvalidBiometric if the data is not a serialised subject."""
        data = bytes(data)
        if len(data) != _SUBJECT_BYTES:
            raise InvalidBiometric(f"a serialised synthetic subject is {_SUBJECT_BYTES} bytes, got {len(data)}")
        magic, version, quality = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise InvalidBiometric("not a serialised synthetic subject (bad magic)")
        if version != _VERSION:
            raise InvalidBiometric(f"unsupported synthetic subject version {version}")
        vectors = np.frombuffer(data, dtype="<f8", offset=_HEADER.size).astype(np.float64)
        return cls(trait=vectors[:FEATURE_DIM], drift=vectors[FEATURE_DIM:], quality=quality)


def enroll(subject: SyntheticSubject, rng: np.random.Generator, captures: int = 3) -> np.ndarray:
    """Enrol a subject: the normalised mean of `captures` captures, as float32."""
    if captures < 1:
        raise ValueError(f"enrollment needs at least one capture, got {captures}")
    total = np.zeros(FEATURE_DIM, dtype=np.float64)
    for _ in range(captures):
        total += subject.capture(rng)
    return _unit(total).astype(np.float32)
