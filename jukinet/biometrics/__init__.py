"""Emulated biometrics: fixed-length feature vectors matched by cosine similarity.

No real sensor: jukinet.biometrics.emulation draws synthetic subjects whose captures behave like
face/finger embeddings. The server stores the encoded template (encrypted elsewhere) and accepts a
fresh sample at or above DEFAULT_THRESHOLD (NIST SP 800-63B-4: FMR ≤ 1e-4, FNMR ≤ 1e-2).
"""

from jukinet.biometrics.emulation import SyntheticSubject, enroll
from jukinet.biometrics.matching import (
    DEFAULT_THRESHOLD,
    FEATURE_DIM,
    TEMPLATE_BYTES,
    InvalidBiometric,
    Matcher,
    decode_template,
    encode_template,
    normalise,
    sample_problem,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "FEATURE_DIM",
    "TEMPLATE_BYTES",
    "InvalidBiometric",
    "Matcher",
    "SyntheticSubject",
    "decode_template",
    "encode_template",
    "enroll",
    "normalise",
    "sample_problem",
]
