"""Tests of course_lib.gradcheck: the numerical gradient is the referee, so it is checked on known derivatives."""

import numpy as np
import pytest

from course_lib.gradcheck import check_gradients, numerical_gradient, rel_error


def test_numerical_gradient_of_known_scalar_function():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x_before = x.copy()
    grad = numerical_gradient(lambda: np.sum(np.sin(x) * x**2), x)
    exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
    assert rel_error(grad, exact) < 1e-9
    np.testing.assert_array_equal(x, x_before)  # restored exactly


def test_numerical_gradient_with_upstream_gradient():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 3))
    x = rng.standard_normal((3, 2))
    dout = rng.standard_normal((5, 2))
    grad = numerical_gradient(lambda: A @ x, x, dout)
    assert rel_error(grad, A.T @ dout) < 1e-9


def test_numerical_gradient_rejects_integer_arrays():
    with pytest.raises(TypeError, match="float"):
        numerical_gradient(lambda: 0.0, np.arange(3))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (np.array([1.0, 2.0]), np.array([1.0, 2.0]), 0.0),
        (np.array([1.0, -1.0]), np.array([1.0, 1.0]), 2.0 / 2.0),
        (np.array([0.0]), np.array([0.0]), 0.0),
        (np.array([3.0, 0.0]), np.array([3.0, 1e-3]), 1e-3 / 6.0),
    ],
)
def test_rel_error_values(a, b, expected):
    assert rel_error(a, b) == pytest.approx(expected)


def test_rel_error_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_gradients_flags_a_wrong_gradient():
    x = np.array([1.0, 2.0, 3.0])
    good = check_gradients(lambda: np.sum(x**3), {"x": x}, {"x": 3 * x**2})
    bad = check_gradients(lambda: np.sum(x**3), {"x": x}, {"x": 3 * x**2 + np.array([0, 0.01, 0])})
    assert good["x"] < 1e-9
    assert bad["x"] > 1e-4


def test_check_gradients_requires_every_gradient():
    x = np.zeros(2)
    with pytest.raises(KeyError):
        check_gradients(lambda: 0.0, {"x": x}, {})
