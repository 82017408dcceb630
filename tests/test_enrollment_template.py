"""Enrollment refuses a malformed biometric template (mutation testing found that removing the check went
unnoticed: every unit test enrolled a good template, and the end-to-end junk was refused for its card)."""

from __future__ import annotations

import pytest
from test_login import Desk, desk  # noqa: F401  (the plain login harness and its fixture)

from jukinet.domain.errors import Problem, Rejected
from jukinet.v1 import operator_pb2


@pytest.mark.parametrize(
    "features",
    [[], [0.5] * 127, [float("nan")] + [0.5] * 127, [float("inf")] + [0.5] * 127, [0.0] * 128],
    ids=["empty", "short", "nan", "inf", "zero"],
)
def test_enrollment_refuses_a_malformed_template(desk: Desk, features: list[float]) -> None:  # noqa: F811
    card = desk.card("clerk")
    request = operator_pb2.EnrollOperatorRequest(
        operator_id=card.operator_id,
        card_certificate=card.certificate_der,
        roles=["register-residents"],
        template=operator_pb2.BiometricSample(features=features),
    )
    with pytest.raises(Rejected) as exc:
        desk.admin.enroll(request, desk.administrator or desk.terminal)
    assert exc.value.problem is Problem.INVALID and str(exc.value).startswith("template: ")
    assert desk.storage.operators.get(card.operator_id) is None
