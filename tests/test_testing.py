"""Tests of course_lib.testing.forbid_calls_into, which hidden assignment tests use to reject reference calls."""

import types

import numpy as np
import pytest

import course_lib.feedforward as ref
from course_lib.testing import forbid_calls_into


def own_affine_forward(x, W, b):
    return x @ W + b, (x, W)


def test_independent_code_passes():
    x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    with forbid_calls_into("course_lib.feedforward") as called:
        out, _ = own_affine_forward(x, W, b)
    assert called == []
    assert out.shape == (2, 4)


@pytest.mark.parametrize(
    "cheat",
    [
        lambda x, W, b: ref.affine_forward(x, W, b),  # direct call
        (lambda f: (lambda x, W, b: f(x, W, b)))(ref.affine_forward),  # an alias captured earlier
        types.FunctionType(ref.affine_forward.__code__, {"np": np}),  # the code rebound to other globals
    ],
    ids=["direct", "alias", "rebound-code"],
)
def test_calls_into_the_reference_are_caught(cheat):
    x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    with pytest.raises(AssertionError, match="reference implementation"):
        with forbid_calls_into("course_lib.feedforward"):
            cheat(x, W, b)


def test_whole_package_can_be_forbidden():
    with pytest.raises(AssertionError, match="gradcheck"):
        with forbid_calls_into("course_lib"):
            from course_lib.gradcheck import rel_error

            rel_error(np.zeros(1), np.zeros(1))


def test_profiler_is_restored():
    import sys

    before = sys.getprofile()
    with forbid_calls_into("course_lib.feedforward"):
        pass
    assert sys.getprofile() is before


def test_forbidding_the_whole_package_does_not_flag_itself():
    with forbid_calls_into("course_lib") as called:
        own_affine_forward(np.ones((1, 1)), np.ones((1, 1)), np.zeros(1))
    assert called == []
