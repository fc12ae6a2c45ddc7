"""Tests of course_lib.testing: forbid_calls_into (hidden tests reject reference calls), python_steps and
steps_per_example (a loop over the examples of a batch is detected), stand_ins (one bug, one question)."""

import types

import numpy as np
import pytest

import course_lib.feedforward as ref
from course_lib.testing import forbid_calls_into, python_steps, stand_ins, steps_per_example


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


def _batch(N):
    rng = np.random.default_rng(N)
    return rng.standard_normal((N, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)


def _comprehension(x, W, b):
    return np.array([x[n] @ W + b for n in range(len(x))])


def _for_loop(x, W, b):
    out = np.empty((len(x), W.shape[1]))
    for n, row in enumerate(x):
        out[n] = row @ W + b
    return out


def _along_axis(x, W, b):
    return np.apply_along_axis(lambda row: row @ W + b, 1, x)


def _vectorised(x, W, b):
    return np.einsum("nd,dm->nm", x, W) + b


@pytest.mark.parametrize("looping", [_comprehension, _for_loop, _along_axis])
def test_a_loop_over_the_examples_costs_steps_per_example(looping):
    assert steps_per_example(looping, _batch) >= 1


@pytest.mark.parametrize("vectorised", [own_affine_forward, _vectorised])
def test_vectorised_code_costs_no_step_per_example(vectorised):
    assert steps_per_example(vectorised, _batch) == 0


def test_python_steps_restores_tracing_and_profiling_and_propagates_errors():
    import sys

    def fails():
        raise KeyError("x")

    before = (sys.gettrace(), sys.getprofile())
    assert python_steps(own_affine_forward, *_batch(3)) > 0
    with pytest.raises(KeyError):
        python_steps(fails)
    assert (sys.gettrace(), sys.getprofile()) == before


def test_stand_ins_rebind_names_for_the_block_only():
    namespace = {"f": len}
    with stand_ins(namespace, f=abs, g=min):
        assert namespace["f"] is abs and namespace["g"] is min
    assert namespace == {"f": len}
    with pytest.raises(ValueError), stand_ins(namespace, f=abs):
        raise ValueError
    assert namespace == {"f": len}
