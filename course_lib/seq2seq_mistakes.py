"""What the common wrong answers of assignment 06 compute, for the hints of its tests (instructor side only).

A test cell names a likely mistake by comparing the student's value with what that mistake gives on the same
inputs (``mistakes=`` of :class:`course_lib.checks.Test`). These functions compute those values: each is a
version of :func:`course_lib.seq2seq.beam_search` or :func:`course_lib.seq2seq.corpus_bleu` with one thing done
wrong. They live here, not in the test cells, so that a test cell holds no complete decoder or BLEU a student
could copy; the test cells call them from ``lambda``s, which the grader's sandbox never runs (this module is
not even installed there, like every reference module).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from .seq2seq import BOS_ID, EOS_ID, PAD_ID, _take

BEAM_MISTAKES = ("no_eos_stop", "not_summed", "state_not_reordered", "length_counts_pad", "no_trim", "raw_scores")
BLEU_MISTAKES = ("not_clipped", "sentence_mean", "no_brevity_penalty", "brevity_inverted", "no_geometric_mean",
                 "totals_of_reference")


def beam_search_mistaken(step: Callable, state, n: int, beam: int, max_len: int, alpha: float,
                         mistake: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`course_lib.seq2seq.beam_search` (tokens (n, L), scores (n,)) with one of :data:`BEAM_MISTAKES`:

    ``no_eos_stop`` a hypothesis that emitted EOS goes on being extended by the model;
    ``not_summed`` hypotheses are ranked by the log-probability of their last token only;
    ``state_not_reordered`` the decoder state does not follow the hypotheses that survive;
    ``length_counts_pad`` the length of a finished hypothesis keeps growing with its PAD steps;
    ``no_trim`` max_len columns are returned whatever the lengths;
    ``raw_scores`` the best hypothesis is chosen by normalised score, but its raw total is returned.
    """
    if mistake not in BEAM_MISTAKES:  # never the right answer: the hidden tests forbid calls into this module
        raise ValueError(f"unknown mistake {mistake!r}")
    state = _take(state, np.repeat(np.arange(n), beam))
    scores = np.full((n, beam), -np.inf)
    scores[:, 0] = 0.0
    seqs = np.zeros((n, beam, 0), dtype=np.int64)
    finished = np.zeros((n, beam), dtype=bool)
    lengths = np.zeros((n, beam))
    tokens = np.full(n * beam, BOS_ID, dtype=np.int64)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        log_probs = np.asarray(log_probs, dtype=np.float64)
        V = log_probs.shape[1]
        log_probs = log_probs.reshape(n, beam, V)
        if mistake != "no_eos_stop":
            stay = np.full(V, -np.inf)
            stay[PAD_ID] = 0.0
            log_probs = np.where(finished[:, :, None], stay, log_probs)
        flat = (log_probs if mistake == "not_summed" else scores[:, :, None] + log_probs).reshape(n, beam * V)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :beam]
        origin, token = top // V, top % V
        scores = np.take_along_axis(flat, top, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, origin[:, :, None], axis=1), token[:, :, None]], axis=2)
        was_finished = np.take_along_axis(finished, origin, axis=1)
        grows = True if mistake in ("length_counts_pad", "no_eos_stop") else ~was_finished
        lengths = np.take_along_axis(lengths, origin, axis=1) + grows
        finished = (was_finished | (token == EOS_ID)) if mistake != "no_eos_stop" else finished
        if mistake != "state_not_reordered":
            state = _take(state, (origin + beam * np.arange(n)[:, None]).ravel())
        tokens = token.ravel()
        if mistake != "no_eos_stop" and np.all(finished | np.isneginf(scores)):
            break
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(np.isneginf(scores), -np.inf, scores / np.maximum(lengths, 1) ** alpha)
    best = np.argmax(normalised, axis=1)
    chosen = seqs[np.arange(n), best]
    keep = seqs.shape[2] if mistake == "no_trim" else max(1, int(lengths[np.arange(n), best].max()))
    returned = scores if mistake == "raw_scores" else normalised
    return chosen[:, :keep], returned[np.arange(n), best]


def corpus_bleu_mistaken(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int,
                         mistake: str) -> float:
    """:func:`course_lib.seq2seq.corpus_bleu`'s score (0-100) with one of :data:`BLEU_MISTAKES`:

    ``not_clipped`` an n-gram of the output counts as a match however often it occurs in the reference;
    ``sentence_mean`` the mean of sentence-level BLEU instead of one corpus-level score;
    ``no_brevity_penalty`` no penalty for outputs shorter than their references;
    ``brevity_inverted`` the penalty as exp(1 - c / r) (output and reference lengths swapped);
    ``no_geometric_mean`` the arithmetic mean of the n-gram precisions instead of their geometric mean;
    ``totals_of_reference`` the precisions divide by the reference's n-gram counts (a recall).
    """
    if mistake not in BLEU_MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}")
    if mistake == "sentence_mean":
        pairs = zip(hypotheses, references, strict=True)
        return float(np.mean([_bleu([h], [r], max_n, "") for h, r in pairs]))
    return _bleu(hypotheses, references, max_n, mistake)


def _bleu(hypotheses, references, max_n: int, mistake: str) -> float:
    matches, totals, c, r = np.zeros(max_n), np.zeros(max_n), 0, 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        c, r = c + len(hyp), r + len(ref)
        for k in range(1, max_n + 1):
            hc = Counter(tuple(hyp[i:i + k]) for i in range(len(hyp) - k + 1))
            rc = Counter(tuple(ref[i:i + k]) for i in range(len(ref) - k + 1))
            matches[k - 1] += sum(count * (g in rc) if mistake == "not_clipped" else min(count, rc[g])
                                  for g, count in hc.items())
            totals[k - 1] += max(0, len(ref if mistake == "totals_of_reference" else hyp) - k + 1)
    if c == 0 or matches.min() == 0:
        return 0.0
    if mistake == "no_brevity_penalty" or c > r:
        bp = 1.0
    else:
        bp = float(np.exp(1 - c / r)) if mistake == "brevity_inverted" else float(np.exp(1 - r / c))
    precisions = matches / np.maximum(totals, 1)
    mean = np.mean(precisions) if mistake == "no_geometric_mean" else np.exp(np.mean(np.log(precisions)))
    return float(100 * bp * mean)


ATTENTION_MISTAKES = ("unmasked", "softmax_over_batch", "unweighted_sum")


def attention_forward_mistaken(s, h, mask, Wq, Wk, v, mistake: str) -> tuple[np.ndarray, np.ndarray]:
    """(c, a) of :func:`course_lib.seq2seq.attention_forward` with one of :data:`ATTENTION_MISTAKES`:
    ``unmasked`` padding positions take part in the softmax; ``softmax_over_batch`` the softmax runs over axis 0
    (the batch; padding masked); ``unweighted_sum`` the context sums h over the positions, without weights."""
    if mistake not in ATTENTION_MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}")
    e = np.tanh((s @ Wq)[:, None, :] + h @ Wk) @ v  # (N, S)
    if mistake == "unmasked":
        a = np.exp(e - e.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
    elif mistake == "softmax_over_batch":
        a = np.where(mask, np.exp(e), 0.0)
        a /= a.sum(axis=0, keepdims=True)
    else:
        a = np.where(mask, 1.0, 0.0)
    c = h.sum(axis=1) if mistake == "unweighted_sum" else np.einsum("ns,nsh->nh", a, h)
    return c, a
