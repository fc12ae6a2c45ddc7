r"""A character-level language model: a tanh RNN (numpy) that reads text one character at a time.

The model predicts the next character at every step,

.. math::

    h_t = \tanh(x_t W_x + h_{t-1} W_h + b), \qquad s_t = h_t W_{\mathrm{out}} + b_{\mathrm{out}}, \qquad
    P(c_{t+1} = v \mid c_{\le t}) = \mathrm{softmax}(s_t)_v,

where :math:`x_t` is the one-hot vector of character :math:`c_t` (so :math:`x_t W_x` is row :math:`c_t` of
:math:`W_x`: a one-hot input is an embedding lookup). Its pieces:

* :func:`read_reviews` reads the text of a few IMDb reviews (Maas et al., 2011) from a local copy of the
  dataset; :class:`CharVocab` maps characters to integer ids and back.
* :class:`CharRNN` holds the parameters only; :meth:`CharRNN.loss` returns the mean cross-entropy per character
  and every gradient (built from :mod:`course_lib.rnn` and :mod:`course_lib.feedforward`), and
  :meth:`CharRNN.sample` generates text.
* :func:`tbptt_batches` cuts a long text into the chunks of truncated backpropagation through time;
  :func:`train_charlm` trains with Adam (:func:`course_lib.optim.adam_step`), gradient clipping, and the hidden
  state carried from chunk to chunk.
* :class:`TorchCharRNN` and :func:`train_charlm_torch` are the same model and the same loop in PyTorch, so
  that torch can check every number.

Dimension legend: N batch (parallel streams of text), T time steps per chunk, V vocabulary size (characters),
H hidden units.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib.feedforward import affine_backward, affine_forward
from course_lib.gradients import clip_by_global_norm
from course_lib.optim import adam_step  # the feedforward chapter's Adam; used here as charlm.adam_step too
from course_lib.rnn import (
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
    sample_from_scores,
    temporal_softmax_loss,
    to_torch,
)

IMDB_DIR_ENV = "RNN_COURSE_IMDB_DIR"


# ----------------------------------------------------------------------------------------------------------
# The text
# ----------------------------------------------------------------------------------------------------------
def read_reviews(
    n_per_label: int = 100,
    directory: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = False,
) -> list[str]:
    """The text of the first ``n_per_label`` positive and ``n_per_label`` negative IMDb reviews.

    Reads ``<directory>/<split>/pos/*.txt`` and ``<directory>/<split>/neg/*.txt`` (the layout of the official
    ``aclImdb`` archive), each folder's files sorted by name, and returns the reviews alternating positive,
    negative, positive, ... with the HTML line breaks ``<br />`` replaced by spaces and runs of whitespace
    collapsed. This is all the chapter on recurrent networks needs; the IMDb chapter has the full loader.

    Args:
        n_per_label: how many reviews of each label.
        directory: the ``aclImdb`` folder; ``None`` finds it as :func:`course_lib.imdb.locate` does: the
            environment variable ``RNN_COURSE_IMDB_DIR``, else the course's download cache.
        split: ``"train"`` or ``"test"``.
        download: with no folder found, download the official archive into the cache (checked, resumable).

    Returns:
        ``2 * n_per_label`` strings.

    Raises:
        FileNotFoundError: no folder given or found (and ``download`` false), or its folders are missing.
        ValueError: a folder holds fewer than ``n_per_label`` reviews.
    """
    if directory is None:
        from course_lib import imdb  # the full loader; imported here so that charlm stays light

        directory = os.environ.get(IMDB_DIR_ENV)
        if not directory:
            try:
                directory = imdb.locate(download=download, progress=False)
            except imdb.DatasetError as err:
                raise FileNotFoundError(
                    f"no IMDb directory given, {IMDB_DIR_ENV} is not set and the cache holds no copy: set "
                    f"{IMDB_DIR_ENV} to the aclImdb folder (the one holding train/ and test/), pass it as "
                    f"directory, run `python -m course_lib.imdb download`, or pass download=True ({err})"
                ) from None
    root = Path(directory)
    by_label = []
    for label in ("pos", "neg"):
        folder = root / split / label
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is not a directory: {IMDB_DIR_ENV} (or directory) must name the aclImdb folder, "
                f"the one holding {split}/pos and {split}/neg; got {str(root)!r}"
            )
        files = sorted(folder.glob("*.txt"))[:n_per_label]
        if len(files) < n_per_label:
            raise ValueError(f"{folder} holds {len(files)} reviews, fewer than the {n_per_label} asked for")
        by_label.append([clean_review(f.read_text(encoding="utf-8")) for f in files])
    return [text for pair in zip(*by_label, strict=True) for text in pair]


def clean_review(text: str) -> str:
    """Replace the reviews' HTML line breaks (``<br />``) by spaces and collapse runs of whitespace."""
    return " ".join(re.sub(r"<br\s*/?>", " ", text).split())


@dataclass(frozen=True)
class CharVocab:
    """The characters of a text, sorted, and the integer id of each (its position)."""

    chars: tuple[str, ...]

    @classmethod
    def build(cls, text: str) -> CharVocab:
        """Every distinct character of ``text``, sorted by code point."""
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @cached_property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """``(len(text),)`` int64 ids; raises ``ValueError`` for a character outside the vocabulary."""
        try:
            return np.array([self.index[c] for c in text], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        """The text of a sequence of ids."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).ravel())


def one_hot(ids: np.ndarray, num_classes: int, dtype=np.float64) -> np.ndarray:
    """``(..., num_classes)`` one-hot vectors of integer ``ids`` of any shape."""
    return np.eye(num_classes, dtype=dtype)[ids]


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------
@dataclass
class CharRNN:
    """A character-level language model: one-hot input -> tanh RNN -> affine output at every step.

    Holds parameters only: ``Wx (V, H)``, ``Wh (H, H)``, ``b (H,)``, ``W_out (H, V)``, ``b_out (V,)``. The hidden
    state is passed in and returned by the methods, never stored.
    """

    params: dict[str, np.ndarray]

    @classmethod
    def create(cls, vocab_size: int, hidden_size: int, seed: int = 0, dtype=np.float64) -> CharRNN:
        r"""Gaussian weights scaled by :math:`1/\sqrt{\text{fan-in}}` (so :math:`W_h`'s spectral radius is
        about 1) and zero biases."""
        V, H = vocab_size, hidden_size
        rng = np.random.default_rng(seed)
        params = {
            "Wx": rng.standard_normal((V, H)) / np.sqrt(V),
            "Wh": rng.standard_normal((H, H)) / np.sqrt(H),
            "b": np.zeros(H),
            "W_out": rng.standard_normal((H, V)) / np.sqrt(H),
            "b_out": np.zeros(V),
        }
        return cls({k: v.astype(dtype) for k, v in params.items()})

    @property
    def vocab_size(self) -> int:
        return self.params["Wx"].shape[0]

    @property
    def hidden_size(self) -> int:
        return self.params["Wh"].shape[0]

    def initial_state(self, batch_size: int) -> np.ndarray:
        """A zero hidden state, ``(N, H)``."""
        return np.zeros((batch_size, self.hidden_size), dtype=self.params["Wh"].dtype)

    def forward(self, ids: np.ndarray, h0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Scores for the next character at every step.

        Args:
            ids: ``(N, T)`` integer character ids.
            h0: ``(N, H)`` initial state; ``None`` starts from zeros.

        Returns:
            scores ``(N, T, V)``; the last hidden state ``(N, H)`` (the next chunk's ``h0``); cache.
        """
        p = self.params
        N, T = ids.shape
        h0 = self.initial_state(N) if h0 is None else h0
        x = one_hot(ids, self.vocab_size, p["Wx"].dtype)  # (N, T, V)
        h, rnn_cache = rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])  # (N, T, H)
        scores, out_cache = affine_forward(h, p["W_out"], p["b_out"])  # (N, T, V)
        return scores, h[:, -1], (rnn_cache, out_cache)

    def backward(self, dscores: np.ndarray, cache: tuple) -> dict[str, np.ndarray]:
        """Gradients of every parameter (and ``"h0"``, the initial state) from ``dscores`` ``(N, T, V)``."""
        rnn_cache, out_cache = cache
        dh, dW_out, db_out = affine_backward(dscores, out_cache)  # dh: (N, T, H)
        _, dh0, dWx, dWh, db = rnn_backward(dh, rnn_cache)
        return {"Wx": dWx, "Wh": dWh, "b": db, "W_out": dW_out, "b_out": db_out, "h0": dh0}

    def loss(
        self, x: np.ndarray, y: np.ndarray, h0: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Mean cross-entropy per predicted character, its gradients, and the last hidden state.

        Args:
            x: ``(N, T)`` input ids; y: ``(N, T)`` target ids (``x`` shifted by one character).
            h0: ``(N, H)`` initial state or ``None``; mask: ``(N, T)`` steps that count, or ``None`` for all.

        Returns:
            loss (nats per character); gradients named as ``params``, plus ``"h0"``; last state ``(N, H)``.
        """
        scores, h_last, cache = self.forward(x, h0)
        loss, dscores = temporal_softmax_loss(scores, y, mask)
        return loss, self.backward(dscores, cache), h_last

    def sample(
        self, prefix: np.ndarray, length: int, temperature: float = 1.0, seed: int = 0, num_samples: int = 1
    ) -> np.ndarray:
        """Generate ``length`` characters after reading ``prefix``, one step at a time.

        Each step computes the scores of the next character from the hidden state, draws it with
        :func:`course_lib.rnn.sample_from_scores` (``temperature=0`` is greedy), and feeds it back as the
        next input.

        Args:
            prefix: ``(P,)`` ids, ``P >= 1``, read first (its last character is the first input whose
                successor is generated).
            length: characters to generate.
            temperature: sampling temperature (0: argmax).
            seed: seed of the draws; the same seed gives the same text.
            num_samples: independent samples generated side by side.

        Returns:
            ``(num_samples, length)`` int64 ids (the prefix is not included).
        """
        p = self.params
        prefix = np.asarray(prefix, dtype=np.int64)
        if prefix.ndim != 1 or len(prefix) == 0:
            raise ValueError("prefix must be a non-empty 1-D array of ids")
        rng = np.random.default_rng(seed)
        V = self.vocab_size
        dtype = p["Wx"].dtype
        h = self.initial_state(num_samples)
        for c in prefix:
            x = one_hot(np.full(num_samples, c), V, dtype)  # (num_samples, V)
            h, _ = rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
        out = np.empty((num_samples, length), dtype=np.int64)
        for i in range(length):
            out[:, i] = sample_from_scores(h @ p["W_out"] + p["b_out"], temperature, rng)
            h, _ = rnn_step_forward(one_hot(out[:, i], V, dtype), h, p["Wx"], p["Wh"], p["b"])
        return out


# ----------------------------------------------------------------------------------------------------------
# Training: truncated BPTT with Adam
# ----------------------------------------------------------------------------------------------------------
def tbptt_batches(
    ids: np.ndarray, batch_size: int, seq_len: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """Endless ``(x, y, reset)`` chunks of one long sequence, for truncated backpropagation through time.

    Each pass (epoch) over the text starts at a random offset in ``[0, seq_len)``, so the chunk boundaries
    move from pass to pass. It cuts ``ids[offset:]`` into ``batch_size`` equal streams, lays them side by side
    as rows, and walks along them ``seq_len`` steps at a time: row ``n`` of a chunk continues row ``n`` of the
    chunk before, so a model can carry its hidden state over. ``y`` is ``x`` shifted by one character, and
    ``reset`` is True on the first chunk of each pass (start again from a zero state).

    Args:
        ids: ``(L,)`` integer ids of the whole text.
        batch_size: N, the number of parallel streams; seq_len: T, the steps per chunk.
        seed: seed of the offsets.

    Yields:
        x ``(N, T)``, y ``(N, T)``, reset (bool).
    """
    ids = np.asarray(ids)
    if (len(ids) - seq_len - 1) // batch_size < seq_len:
        raise ValueError(f"{len(ids)} ids are too few for {batch_size} streams of at least {seq_len} steps")
    rng = np.random.default_rng(seed)
    while True:
        offset = int(rng.integers(seq_len))
        stream_len = (len(ids) - offset - 1) // batch_size
        x_all = ids[offset : offset + batch_size * stream_len].reshape(batch_size, stream_len)  # (N, L)
        y_all = ids[offset + 1 : offset + 1 + batch_size * stream_len].reshape(batch_size, stream_len)  # (N, L)
        for k in range(stream_len // seq_len):
            chunk = slice(k * seq_len, (k + 1) * seq_len)
            yield x_all[:, chunk], y_all[:, chunk], k == 0


@dataclass
class LMHistory:
    """Per-step records of :func:`train_charlm` and :func:`train_charlm_torch`."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # global norm before clipping


def train_charlm(
    model: CharRNN,
    ids: np.ndarray,
    *,
    steps: int,
    batch_size: int = 32,
    seq_len: int = 64,
    lr: float = 3e-3,
    clip: float | None = 5.0,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int, CharRNN], None] | None = None,
) -> LMHistory:
    """Train ``model`` in place on the text ``ids`` with truncated BPTT and Adam.

    Each step takes the next chunk of :func:`tbptt_batches`, runs the model from the hidden state the previous
    chunk ended in (zeros at the start of each pass over the text), backpropagates through this chunk only
    (the gradient ``dh0`` is dropped: that is the truncation), clips the global gradient norm and takes an
    Adam step.

    Args:
        model: a :class:`CharRNN`; ids: ``(L,)`` the text as ids.
        steps: number of chunks (optimiser steps); batch_size, seq_len: N and T of each chunk.
        lr: Adam's learning rate; clip: the largest global gradient norm (``None``: no clipping).
        seed: seed of :func:`tbptt_batches` (the run is deterministic given the model's initial weights).
        progress: show a tqdm bar.
        callback: called as ``callback(step, model)`` after every step (``step`` counts from 1), e.g. to sample.

    Returns:
        :class:`LMHistory` with the loss (nats per character) and gradient norm of every step.
    """
    batches = tbptt_batches(ids, batch_size, seq_len, seed=seed)
    state: dict = {}
    history = LMHistory()
    h = None
    for step in tqdm(range(1, steps + 1), desc="steps", disable=not progress, leave=False):
        x, y, reset = next(batches)
        if reset:
            h = None
        loss, grads, h = model.loss(x, y, h0=h)  # h: the last state, carried to the next chunk
        del grads["h0"]  # truncation: no gradient flows into the previous chunk
        grads, norm = clip_by_global_norm(grads, clip if clip is not None else np.inf)
        adam_step(model.params, grads, state, lr)
        history.loss.append(loss)
        history.grad_norm.append(norm)
        if callback is not None:
            callback(step, model)
    return history


def evaluate_charlm(model: CharRNN, ids: np.ndarray, batch_size: int = 8, seq_len: int = 250) -> float:
    r"""Mean cross-entropy (nats per character) of ``model`` on held-out text, predicting every character but the
    first.

    The text is cut into ``batch_size`` equal streams (the last few characters that do not fill a stream are
    left out), read ``seq_len`` characters at a time with the hidden state carried over, as in training, so
    every prediction sees all of its stream's text before it. Divide by :math:`\ln 2` for bits per character;
    :math:`e^{\text{loss}}` is the perplexity per character.

    Args:
        model: a :class:`CharRNN`; ids: ``(L,)`` the held-out text as ids.
        batch_size: streams read in parallel; seq_len: characters per forward call (memory only).
    """
    ids = np.asarray(ids)
    stream_len = (len(ids) - 1) // batch_size
    if stream_len < 1:
        raise ValueError(f"{len(ids)} ids are too few for {batch_size} streams")
    x_all = ids[: batch_size * stream_len].reshape(batch_size, stream_len)  # (N, L)
    y_all = ids[1 : 1 + batch_size * stream_len].reshape(batch_size, stream_len)  # (N, L)
    total, h = 0.0, None
    for start in range(0, stream_len, seq_len):
        x, y = x_all[:, start : start + seq_len], y_all[:, start : start + seq_len]
        scores, h, _ = model.forward(x, h)
        loss, _ = temporal_softmax_loss(scores, y)
        total += loss * y.size
    return total / y_all.size


# ----------------------------------------------------------------------------------------------------------
# The same model and loop in PyTorch
# ----------------------------------------------------------------------------------------------------------
class TorchCharRNN(torch.nn.Module):
    """:class:`CharRNN` in PyTorch: one-hot -> ``nn.RNN(tanh, batch_first)`` -> ``nn.Linear``.

    ``nn.RNN`` has two bias vectors whose sum plays the role of ``b``; here ``bias_hh_l0`` stays zero and is not
    trained, so the model has exactly :class:`CharRNN`'s parameters (with two trainable biases, Adam would move
    their sum twice as far as it moves the numpy model's ``b``).
    """

    def __init__(self, vocab_size: int, hidden_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = torch.nn.RNN(vocab_size, hidden_size, nonlinearity="tanh", batch_first=True)
        self.out = torch.nn.Linear(hidden_size, vocab_size)
        with torch.no_grad():
            self.rnn.bias_hh_l0.zero_()
        self.rnn.bias_hh_l0.requires_grad_(False)

    @classmethod
    def from_numpy(cls, model: CharRNN) -> TorchCharRNN:
        """A copy of ``model``'s weights, in the dtype of its parameters."""
        p = model.params
        module = cls(model.vocab_size, model.hidden_size).to(getattr(torch, p["Wx"].dtype.name))
        module.rnn = to_torch(p["Wx"], p["Wh"], p["b"])
        module.rnn.bias_hh_l0.requires_grad_(False)
        with torch.no_grad():
            module.out.weight.copy_(torch.as_tensor(p["W_out"].T))
            module.out.bias.copy_(torch.as_tensor(p["b_out"]))
        return module

    def forward(self, ids: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(N, T, V)`` and the last hidden state ``(N, H)`` for ids ``(N, T)``."""
        x = torch.nn.functional.one_hot(ids, self.vocab_size).to(self.out.weight.dtype)  # (N, T, V)
        h, h_last = self.rnn(x, None if h0 is None else h0[None])
        return self.out(h), h_last[0]


def train_charlm_torch(
    module: TorchCharRNN,
    ids: np.ndarray,
    *,
    steps: int,
    batch_size: int = 32,
    seq_len: int = 64,
    lr: float = 3e-3,
    clip: float | None = 5.0,
    seed: int = 0,
    progress: bool = True,
) -> LMHistory:
    """:func:`train_charlm` in PyTorch: the same chunks, ``torch.optim.Adam`` and ``clip_grad_norm_``.

    The hidden state is carried over chunks with ``detach()``, which is truncated BPTT in autograd's terms.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr)
    batches = tbptt_batches(ids, batch_size, seq_len, seed=seed)
    history = LMHistory()
    h = None
    for _ in tqdm(range(steps), desc="steps", disable=not progress, leave=False):
        x, y, reset = next(batches)
        if reset:
            h = None
        scores, h_last = module(torch.from_numpy(x), h)
        loss = torch.nn.functional.cross_entropy(scores.reshape(-1, module.vocab_size), torch.from_numpy(y).reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
        optimiser.step()
        h = h_last.detach()
        history.loss.append(loss.item())
        history.grad_norm.append(float(norm))
    return history
