r"""A bag-of-words baseline for sentiment: NBSVM-style logistic regression on binary unigrams and bigrams.

Wang and Manning (2012) scale each binary feature by its naive-Bayes log-count ratio before fitting a linear
classifier; with unigrams and bigrams this reached 91.2% on IMDb ("NBSVM-bi"). Here the linear classifier is a
logistic regression (an "NB-LR"), fitted with Adam in PyTorch on a sparse matrix. Dimension legend: N reviews,
F features (unigrams and bigrams seen in at least ``min_df`` training reviews).

.. math::

    r = \log\frac{(\alpha + \sum_{n: y_n = 1} x_n) / \lVert \alpha + \sum_{n: y_n = 1} x_n \rVert_1}
                 {(\alpha + \sum_{n: y_n = 0} x_n) / \lVert \alpha + \sum_{n: y_n = 0} x_n \rVert_1}, \qquad
    p(\text{positive} \mid x) = \sigma\big(w^\top (x \odot r) + b\big)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .text import Vocabulary


class NgramFeaturizer:
    """Binary unigram + bigram features of token lists, as a sparse ``(N, F)`` float tensor."""

    def __init__(self, min_df: int = 2):
        self.min_df = min_df

    def _keys(self, tokens: Sequence[str]) -> np.ndarray:
        u = self.unigrams.encode(tokens).astype(np.int64)  # unknown words map to <unk> (id 1)
        V = len(self.unigrams)
        return np.unique(np.concatenate([u, V + u[:-1] * V + u[1:]]))  # unigram keys < V <= bigram keys

    def fit(self, token_lists: Sequence[Sequence[str]]) -> NgramFeaturizer:
        """Keep the n-grams that occur in at least ``min_df`` of the reviews."""
        self.unigrams = Vocabulary.build(token_lists)
        keys, df = np.unique(np.concatenate([self._keys(t) for t in token_lists]), return_counts=True)
        self.keys = keys[df >= self.min_df]  # sorted
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def transform(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        rows, cols = [], []
        for n, tokens in enumerate(token_lists):
            k = self._keys(tokens)
            pos = np.searchsorted(self.keys, k)
            hit = (pos < len(self.keys)) & (self.keys[np.minimum(pos, len(self.keys) - 1)] == k)
            cols.append(pos[hit])
            rows.append(np.full(int(hit.sum()), n))
        index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]))
        values = torch.ones(index.shape[1], dtype=torch.float32)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            coo = torch.sparse_coo_tensor(index, values, (len(token_lists), len(self.keys)), check_invariants=False)
            return coo.coalesce().to_sparse_csr()


def nb_ratios(x: torch.Tensor, y: np.ndarray, alpha: float = 1.0) -> torch.Tensor:
    """The log-count ratio ``r`` ``(F,)`` of binary features ``x`` ``(N, F)`` with labels ``y`` ``(N,)``."""
    col, val = x.col_indices(), x.values()
    y = torch.as_tensor(y, dtype=val.dtype)
    row_label = torch.repeat_interleave(y, x.crow_indices().diff())  # the label of each stored entry
    pos = torch.zeros(x.shape[1], dtype=val.dtype).index_add_(0, col, val * row_label) + alpha
    neg = torch.zeros(x.shape[1], dtype=val.dtype).index_add_(0, col, val * (1 - row_label)) + alpha
    return torch.log((pos / pos.sum()) / (neg / neg.sum()))


def scale_columns(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``x * r`` for a sparse CSR ``x`` ``(N, F)`` and ``r`` ``(F,)``, still sparse CSR."""
    return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), x.values() * r[x.col_indices()], x.shape,
                                   check_invariants=False)


def logistic_loss_grad(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, weight_decay: float = 0.0,
    with_loss: bool = True, out: torch.Tensor | None = None,
) -> tuple[float | None, torch.Tensor, torch.Tensor]:
    r"""Mean binary cross-entropy of a logistic regression on sparse CSR ``x`` ``(N, F)`` plus the L2 penalty
    :math:`\lambda \lVert w \rVert^2`, and its gradients, written out (autograd through a sparse product is slow
    on a CPU: it builds the transpose of ``x`` at every step).

    .. math::

        z = x w + b, \qquad \frac{\partial L}{\partial w} = \frac{1}{N} x^\top (\sigma(z) - y) + 2 \lambda w,
        \qquad \frac{\partial L}{\partial b} = \frac{1}{N} \sum_n (\sigma(z_n) - y_n)

    Args:
        x: ``(N, F)`` sparse CSR; y: ``(N,)`` targets in {0, 1}; w: ``(F,)``; b: ``()``.
        with_loss: False skips the loss (a pass over ``w``) and returns None for it.
        out: an ``(F,)`` buffer to write ``dw`` into (saves an allocation per step).

    Returns:
        loss (float or None), dw ``(F,)``, db ``()``.
    """
    logits = torch.sparse.mm(x, w.unsqueeze(1)).squeeze(1) + b  # (N,)
    loss = None
    if with_loss:
        loss = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + weight_decay * (w * w).sum())
    dlogits = (torch.sigmoid(logits) - y) / len(y)  # (N,)
    row = torch.repeat_interleave(torch.arange(len(y)), x.crow_indices().diff())  # the row of each stored entry
    dw = out.zero_() if out is not None else torch.zeros_like(w)
    dw.index_add_(0, x.col_indices(), x.values() * dlogits[row])  # x^T dlogits
    if weight_decay:
        dw += 2 * weight_decay * w
    return loss, dw, dlogits.sum()


def fit_logistic(
    x: torch.Tensor, y: np.ndarray, weight_decay: float = 1e-6, epochs: int = 8, batch_size: int = 256,
    lr: float = 0.02, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic regression on sparse ``x`` ``(N, F)`` with Adam on mini-batches (gradients from
    :func:`logistic_loss_grad`); returns weights ``(F,)`` and bias ``()``."""
    g = torch.Generator().manual_seed(seed)
    N, F = x.shape
    dtype = x.values().dtype
    w = torch.zeros(F, dtype=dtype)
    b = torch.zeros((), dtype=dtype)
    # fused: one pass over the F weights per step (3-4x faster than the default); Adam's weight_decay adds
    # weight_decay * w to the gradient, so 2 * weight_decay gives the gradient of the penalty weight_decay * |w|^2
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=2 * weight_decay, fused=True)
    y_t = torch.as_tensor(y, dtype=dtype)
    w.grad = torch.zeros_like(w)
    for _ in range(epochs):
        for idx in torch.randperm(N, generator=g).split(batch_size):
            _, _, b.grad = logistic_loss_grad(_rows(x, idx), y_t[idx], w, b, with_loss=False, out=w.grad)
            opt.step()
    return w, b


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of a sparse CSR matrix, as CSR."""
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    starts, ends = crow[idx], crow[idx + 1]
    counts = ends - starts
    take = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts) + torch.arange(int(counts.sum()))
    new_crow = torch.zeros(len(idx) + 1, dtype=crow.dtype)
    new_crow[1:] = torch.cumsum(counts, 0)
    return torch.sparse_csr_tensor(new_crow, col[take], val[take], (len(idx), x.shape[1]), check_invariants=False)


def predict_logistic(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Probabilities ``(N,)`` of the positive class."""
    with torch.no_grad():
        return torch.sigmoid(torch.sparse.mm(x, w.unsqueeze(1)).squeeze(1) + b).double().numpy()


@dataclass
class NBLogistic:
    """A fitted NB-weighted logistic regression: features, their log-count ratios ``r`` ``(F,)``, weights
    ``w`` ``(F,)`` and bias ``b``."""

    featurizer: NgramFeaturizer
    r: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    def predict_proba(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Probabilities ``(N,)`` that each tokenized text is positive."""
        return predict_logistic(scale_columns(self.featurizer.transform(token_lists), self.r), self.w, self.b)


def train_nbsvm(
    train_tokens: Sequence[Sequence[str]], train_labels: np.ndarray, test_tokens: Sequence[Sequence[str]] | None,
    test_labels: np.ndarray | None, weight_decays: Sequence[float] = (0.0, 1e-7, 1e-6, 1e-5), val_fraction: float = 0.1,
    seed: int = 0, min_df: int = 2, keep_held_out: bool = False,
) -> dict:
    """Pick the L2 strength on a validation split of the training reviews, refit on all of them, test once.

    Returns:
        a results dictionary: ``val_accuracy`` per weight decay, the chosen one, ``train_seconds`` (features,
        ratios and fits included), ``features`` (F) and, with test data, ``test`` (accuracy, confusion, n) and
        the test probabilities ``probs``; ``model``, the :class:`NBLogistic` fitted on all the training reviews;
        ``held_out``: the validation indices ``val_idx`` and the probabilities ``val_probs`` of the model fitted
        without them (and, with ``keep_held_out``, its ``test_probs``), with ``seconds`` spent up to then: what
        :func:`best_mixture` needs to combine this model with another fitted on the same reviews.
    """
    t0 = time.perf_counter()
    train_labels = np.asarray(train_labels)
    perm = np.random.default_rng(seed).permutation(len(train_tokens))
    n_val = int(round(val_fraction * len(perm)))
    val_idx, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    def featurize(fit_tokens, fit_y, other):
        feats = NgramFeaturizer(min_df).fit(fit_tokens)
        x = feats.transform(fit_tokens)
        r = nb_ratios(x, fit_y)
        return feats, r, scale_columns(x, r), [scale_columns(feats.transform(o), r) for o in other]

    feats_fit, r_fit, x_fit, (x_val,) = featurize([train_tokens[i] for i in fit_idx], train_labels[fit_idx],
                                   [[train_tokens[i] for i in val_idx]])
    val_accuracy, fitted = {}, {}
    for wd in weight_decays:
        fitted[wd] = fit_logistic(x_fit, train_labels[fit_idx], weight_decay=wd, seed=seed)
        val_accuracy[wd] = float(np.mean((predict_logistic(x_val, *fitted[wd]) > 0.5) == train_labels[val_idx]))
    best_wd = max(weight_decays, key=lambda k: (val_accuracy[k], -k))
    held_out = {"val_idx": val_idx, "val_probs": predict_logistic(x_val, *fitted[best_wd])}
    if keep_held_out and test_tokens is not None:  # the model fitted without the validation reviews, on test
        held_out["test_probs"] = predict_logistic(scale_columns(feats_fit.transform(test_tokens), r_fit),
                                                  *fitted[best_wd])
    held_out_seconds = time.perf_counter() - t0
    others = [test_tokens] if test_tokens is not None else []
    feats, r, x_train, x_others = featurize(train_tokens, train_labels, others)
    w, b = fit_logistic(x_train, train_labels, weight_decay=best_wd, seed=seed)
    results = {"name": "nbsvm", "val_accuracy": {str(k): v for k, v in val_accuracy.items()}, "weight_decay": best_wd,
               "features": len(feats), "train_seconds": time.perf_counter() - t0,
               "model": NBLogistic(feats, r, w, b), "held_out": {**held_out, "seconds": held_out_seconds}}
    if test_tokens is not None:
        probs = predict_logistic(x_others[0], w, b)
        pred = (probs > 0.5).astype(np.int64)
        y = np.asarray(test_labels)
        results["test"] = {"accuracy": float(np.mean(pred == y)), "n": len(y),
                           "confusion": [[int(np.sum((y == a) & (pred == c))) for c in (0, 1)] for a in (0, 1)]}
        results["probs"] = probs
    return results


def best_mixture(val_a: np.ndarray, val_b: np.ndarray, y_val: np.ndarray, steps: int = 20) -> tuple[float, float]:
    """The weight ``w`` in ``{0, 1/steps, ..., 1}`` whose mixture ``w * a + (1 - w) * b`` of two models'
    validation probabilities ``(N,)`` is most accurate (ties: the ``w`` nearest 1/2); returns ``(w, accuracy)``."""
    y_val = np.asarray(y_val)
    if not (len(val_a) == len(val_b) == len(y_val)):
        raise ValueError(f"{len(val_a)}, {len(val_b)} and {len(y_val)} validation probabilities and labels differ")
    scored = [(float(np.mean(((w * val_a + (1 - w) * val_b) > 0.5) == y_val)), -abs(w - 0.5), w)
              for w in np.linspace(0.0, 1.0, steps + 1)]
    accuracy, _, w = max(scored)
    return float(w), accuracy
