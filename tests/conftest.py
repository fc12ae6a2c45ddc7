"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float64)


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(1234)


def t(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of a numpy array, optionally requiring grad."""
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=grad)


def assert_close(actual, expected, **kwargs) -> None:
    """torch.testing.assert_close at its float64 defaults, accepting numpy arrays or tensors on either side."""
    to_t = lambda a: a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))  # noqa: E731
    torch.testing.assert_close(to_t(actual), to_t(expected), **kwargs)


@pytest.fixture(scope="session")
def built_book():
    """Build the website once per test session (tools/build_book.py, as ``make book``); fail on any warning."""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "tools" / "build_book.py")], cwd=root,
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result
