"""Feature-vector validation, cosine matching and the template wire format."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from jukinet.domain.errors import Problem, Rejected

FEATURE_DIM = 128
"""Length of every biometric feature vector (sample or template)."""

TEMPLATE_BYTES = FEATURE_DIM * 4
"""Size of an encoded template: FEATURE_DIM float32 values, little-endian."""

# DEFAULT_THRESHOLD was chosen with bench/biometric_eval.py on the synthetic population of
# jukinet.biometrics.emulation (2000 subjects, 20,000 genuine and 3,998,000 impostor comparisons, seeds 1-5):
#   impostor scores: mean 0.000, sd 0.0883 (= 1/sqrt(128)), highest 0.415-0.444; the exact tail of this
#     distribution (evaluation.independent_fmr) puts FMR = 1e-4 at 0.323, 1.3e-6 at 0.40, 4.4e-8 at 0.45;
#   genuine scores: mean 0.81, sd 0.09, 1st percentile 0.52, median 0.82, worst 0.20;
#   EER 0.005-0.02 % at thresholds 0.31-0.33.
# At 0.45: no false match observed in any run (FMR < 2.5e-7; model 4.4e-8, > 2000x below the SP 800-63B-4
# limit of 1e-4) and FNMR 0.24-0.34 % (about 3x below the 1e-2 limit). The tail is real: at 0.55 FNMR is
# ~1.5 % and at 0.60 ~3 %, mostly from the weakest-quality decile ("goats", FNMR ~2-3 % already at 0.45).
DEFAULT_THRESHOLD: float = 0.45

Features = npt.ArrayLike | Sequence[float]


class InvalidBiometric(Rejected):
    """A sample, template or encoded template is malformed. (Problem.INVALID)"""

    def __init__(self, message: str) -> None:
        super().__init__(Problem.INVALID, message)


def _vector_problem(features: object, what: str) -> tuple[np.ndarray | None, str | None]:
    try:
        arr = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"{what} must be a sequence of {FEATURE_DIM} numbers"
    if arr.ndim != 1:
        return None, f"{what} must be a flat vector of {FEATURE_DIM} features, got shape {arr.shape}"
    if arr.shape[0] != FEATURE_DIM:
        return None, f"{what} has {FEATURE_DIM} features, got {arr.shape[0]}"
    if not np.isfinite(arr).all():
        return None, f"{what} contains NaN or infinite values"
    if not arr.any():
        return None, f"{what} is the zero vector"
    return arr, None


def sample_problem(features: Features) -> str | None:
    """Return why `features` is not a usable biometric sample, or None if it is."""
    return _vector_problem(features, "a biometric sample")[1]


def _checked_unit(features: Features, what: str) -> np.ndarray:
    arr, problem = _vector_problem(features, what)
    if problem is not None or arr is None:
        raise InvalidBiometric(problem)
    arr = arr / np.abs(arr).max()  # scale first so the squared norm can neither overflow nor underflow
    return arr / math.sqrt(float(arr @ arr))


class Matcher:
    """Cosine-similarity matcher: a sample matches a template at or above `threshold`."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        threshold = float(threshold)
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"a cosine-similarity threshold lies in [-1, 1], got {threshold}")
        self.threshold = threshold

    def __repr__(self) -> str:
        return f"Matcher(threshold={self.threshold})"

    def similarity(self, template: Features, sample: Features) -> float:
        """Cosine similarity of template and sample (both normalised), in [-1, 1].

        Raises InvalidBiometric if either is malformed (wrong length, NaN/inf, zero vector).
        """
        t = _checked_unit(template, "a biometric template")
        s = _checked_unit(sample, "a biometric sample")
        return min(1.0, max(-1.0, float(t @ s)))

    def matches(self, template: Features, sample: Features) -> bool:
        """True if the sample's similarity to the template reaches the threshold."""
        return self.similarity(template, sample) >= self.threshold


def normalise(features: Features) -> np.ndarray:
    """Validate a feature vector and return it L2-normalised as float32."""
    return _checked_unit(features, "a biometric feature vector").astype(np.float32)


def encode_template(features: Features) -> bytes:
    """Encode a template as TEMPLATE_BYTES bytes: the L2-normalised vector as float32 little-endian."""
    unit = _checked_unit(features, "a biometric template")
    return unit.astype("<f4").tobytes()


def decode_template(data: bytes) -> np.ndarray:
    """Decode the output of encode_template into a float32 vector; raise InvalidBiometric if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidBiometric(f"an encoded biometric template is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != TEMPLATE_BYTES:
        raise InvalidBiometric(f"an encoded biometric template is {TEMPLATE_BYTES} bytes, got {len(data)}")
    arr = np.frombuffer(data, dtype="<f4").astype(np.float32)
    _, problem = _vector_problem(arr, "an encoded biometric template")
    if problem is not None:
        raise InvalidBiometric(problem)
    return arr
