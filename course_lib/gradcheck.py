r"""Numerical gradient checking: the referee for every hand-written backward pass in the course.

A backward pass is checked by comparing it with a centered finite difference,

.. math::

    \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},

whose error is :math:`O(h^2)`. In float64 with :math:`h = 10^{-5}` the truncation error (about
:math:`h^2 f'''`) and the rounding error (about :math:`\epsilon f / h`) are both near :math:`10^{-10}`,
so a correct gradient agrees to a relative error of about :math:`10^{-8}` or better.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def numerical_gradient(
    f: Callable[[], float | np.ndarray],
    x: np.ndarray,
    dout: np.ndarray | None = None,
    h: float = 1e-5,
) -> np.ndarray:
    r"""Centered-difference gradient of ``f`` with respect to the array ``x``, perturbed in place.

    ``f`` takes no arguments and reads ``x`` (and anything else) from its closure, so the same
    function checks the gradient of any of its inputs or parameters. ``x`` is restored exactly after
    each perturbation.

    .. math::

        g_i = \sum_j \mathrm{dout}_j \,
              \frac{f_j(x + h e_i) - f_j(x - h e_i)}{2h}

    Args:
        f: callable returning a scalar, or an array of the shape of ``dout``.
        x: float array of any shape, modified in place during the call and restored.
        dout: upstream gradient of the same shape as ``f()``'s output; ``None`` when ``f`` is a scalar.
        h: step size; 1e-5 suits float64.

    Returns:
        array of ``x.shape``: the numerical gradient.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"numerical_gradient needs a float array, got dtype {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = np.array(f(), dtype=np.float64, copy=True)
        x[i] = old - h
        fm = np.array(f(), dtype=np.float64, copy=True)
        x[i] = old
        diff = fp - fm
        grad[i] = (diff.sum() if dout is None else np.sum(diff * dout)) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    r"""Relative error between two arrays, scaled by their largest magnitude.

    .. math::

        \mathrm{rel}(a, b) = \frac{\max_i |a_i - b_i|}{\max(10^{-8}, \max_i (|a_i| + |b_i|))}

    Scaling by the largest entry (rather than entry by entry) keeps tiny gradient entries, whose
    finite-difference estimate is dominated by rounding, from hiding a correct result.

    Args:
        a, b: arrays of the same shape.

    Returns:
        float: 0 for identical arrays; below about 1e-7 for a correct float64 gradient check.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def check_gradients(
    f: Callable[[], float | np.ndarray],
    arrays: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    dout: np.ndarray | None = None,
    h: float = 1e-5,
) -> dict[str, float]:
    """Relative error of each analytic gradient in ``grads`` against the numerical one.

    Args:
        f: as in :func:`numerical_gradient`; it must read the arrays of ``arrays`` from its closure.
        arrays: name -> the array that is perturbed (in place, restored afterwards).
        grads: name -> the analytic gradient of the same shape (names must match ``arrays``).
        dout: upstream gradient when ``f`` returns an array.
        h: step size.

    Returns:
        name -> relative error (see :func:`rel_error`).
    """
    missing = set(arrays) - set(grads)
    if missing:
        raise KeyError(f"no analytic gradient for {sorted(missing)}")
    return {name: rel_error(grads[name], numerical_gradient(f, x, dout, h)) for name, x in arrays.items()}
