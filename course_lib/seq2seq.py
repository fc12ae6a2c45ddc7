"""Sequence to sequence: additive attention (numpy, from scratch), encoder-decoder models (torch), decoding, BLEU.

* :func:`attention_forward` / :func:`attention_backward`: one step of additive (Bahdanau) attention in numpy,
  a forward/backward pair with an explicit cache, checked against torch autograd and numerical gradients.
* :class:`Seq2Seq`: a GRU encoder-decoder, with or without attention. The decoder runs over the whole target in
  one call (teacher forcing), and attention is applied to its outputs afterwards (Luong et al., 2015) with the
  additive score of Bahdanau et al. (2015); without attention, the encoder's final state is all the decoder gets.
* :func:`greedy_decode` and :func:`beam_search` (with length normalisation): model-agnostic, over a ``step``
  function, so the same code decodes the torch model and a toy model whose every output can be enumerated.
* :func:`corpus_bleu`: corpus-level BLEU with the brevity penalty (Papineni et al., 2002), equal to sacrebleu's.
* :func:`train`: the training loop, with atomic checkpoints and exact resume (``course_lib.train``'s helpers).

Dimension legend: N batch, S source length, T target length, E embedding, H hidden units, He encoder outputs
(2H when bidirectional), A attention units, V vocabulary, K beam width.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm.auto import tqdm

from .spa_eng import BOS_ID, EOS_ID, PAD_ID, PairDataset, Vocab
from .train import load_checkpoint, rng_states, save_checkpoint, set_rng_states, set_seed


# ========================================================================================= numpy attention
def attention_forward(s, h, mask, Wq, Wk, v):
    """One step of additive attention: a decoder state looks at every encoder output.

    .. math::
        u_{j} = \\tanh(s W_q + h_j W_k), \\quad e_j = u_j \\cdot v, \\quad
        a = \\mathrm{softmax}(e) \\text{ over valid } j, \\quad c = \\sum_j a_j h_j

    Args:
        s: decoder state (the query), (N, H).
        h: encoder outputs (keys and values), (N, S, He).
        mask: (N, S) bool, True where ``h`` is a real token (None: all are); every row needs one True.
        Wq: (H, A). Wk: (He, A). v: (A,).

    Returns:
        c: the context, (N, He); a: the attention weights, (N, S) (0 where masked; rows sum to 1);
        cache: ``(s, h, mask, Wq, Wk, v, u, a)`` with ``u`` (N, S, A) and ``mask`` as an (N, S) bool array.
    """
    N, S, _ = h.shape
    mask = np.ones((N, S), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    u = np.tanh((s @ Wq)[:, None, :] + h @ Wk)  # (N, S, A)
    e = np.where(mask, u @ v, -np.inf)  # (N, S)
    e = e - e.max(axis=1, keepdims=True)
    a = np.exp(e)
    a /= a.sum(axis=1, keepdims=True)
    c = np.einsum("ns,nsh->nh", a, h)  # (N, He)
    return c, a, (s, h, mask, Wq, Wk, v, u, a)


def attention_backward(dc, cache):
    """Backward pass of :func:`attention_forward`.

    .. math::
        \\frac{\\partial L}{\\partial a_j} = dc \\cdot h_j, \\quad
        \\frac{\\partial L}{\\partial e_j} = a_j \\Big(\\frac{\\partial L}{\\partial a_j} -
        \\sum_k a_k \\frac{\\partial L}{\\partial a_k}\\Big)

    Args:
        dc: upstream gradient of the context, (N, He).
        cache: from :func:`attention_forward`.

    Returns:
        ds (N, H), dh (N, S, He), dWq (H, A), dWk (He, A), dv (A,).
    """
    s, h, mask, Wq, Wk, v, u, a = cache
    da = np.einsum("nh,nsh->ns", dc, h)  # (N, S)
    dh = a[:, :, None] * dc[:, None, :]  # (N, S, He): through the weighted sum
    de = a * (da - np.sum(a * da, axis=1, keepdims=True))  # softmax backward; 0 where masked (a = 0)
    dv = np.einsum("nsa,ns->a", u, de)
    dpre = de[:, :, None] * v * (1.0 - u * u)  # (N, S, A): through e = u.v and tanh
    dq = dpre.sum(axis=1)  # (N, A)
    ds = dq @ Wq.T
    dWq = s.T @ dq
    dWk = np.einsum("nse,nsa->ea", h, dpre)
    dh += dpre @ Wk.T  # through the keys
    return ds, dh, dWq, dWk, dv


# ========================================================================================= torch models
class AdditiveAttention(nn.Module):
    """Additive attention for many queries at once: ``queries (N, T, H)``, ``values (N, S, He)``.

    ``weights = softmax_j(v . tanh(q_t Wq + h_j Wk))``; the same function as :func:`attention_forward`, with
    ``Wq = self.query.weight.T``, ``Wk = self.key.weight.T``, ``v = self.score.weight[0]``.
    """

    def __init__(self, query_size: int, value_size: int, attn_size: int):
        super().__init__()
        self.query = nn.Linear(query_size, attn_size, bias=False)
        self.key = nn.Linear(value_size, attn_size, bias=False)
        self.score = nn.Linear(attn_size, 1, bias=False)

    def forward(self, queries, values, mask, keys=None):
        """``context (N, T, He), weights (N, T, S)``; ``mask (N, S)`` True on real tokens; ``keys`` is
        ``self.key(values)`` when already computed (decoding step by step)."""
        keys = self.key(values) if keys is None else keys  # (N, S, A)
        e = self.score(torch.tanh(self.query(queries)[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)
        e = e.masked_fill(~mask[:, None, :], float("-inf"))  # (N, T, S)
        weights = torch.softmax(e, dim=-1)
        return weights @ values, weights

    @classmethod
    def from_numpy(cls, Wq, Wk, v) -> AdditiveAttention:
        """The module whose weights are the numpy arrays of :func:`attention_forward` (float64)."""
        module = cls(Wq.shape[0], Wk.shape[0], Wq.shape[1]).double()
        with torch.no_grad():
            module.query.weight.copy_(torch.from_numpy(Wq.T))
            module.key.weight.copy_(torch.from_numpy(Wk.T))
            module.score.weight.copy_(torch.from_numpy(v[None, :]))
        return module


@dataclass
class ModelConfig:
    """The shape of a :class:`Seq2Seq` (stored with checkpoints)."""

    src_vocab: int
    tgt_vocab: int
    emb: int = 128
    hidden: int = 256
    attention: bool = True
    attn_size: int = 128
    out_size: int = 256  # size of the layer before the output projection (the "attentional state")
    bidirectional: bool = True
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Seq2Seq(nn.Module):
    """GRU encoder-decoder for translation, with or without additive attention.

    Encoder: embedding, GRU (bidirectional by default) over the padded source (packed: padding is never read).
    Its final states, through a tanh layer, are the decoder's initial state: without attention, *all* the
    decoder knows of the source. Decoder: a GRU over the target's embeddings (teacher forcing: the true previous
    word as input), then ``o_t = tanh(W_o [s_t; c_t])`` with ``c_t`` the attention context (``o_t = tanh(W_o
    s_t)`` without attention), then logits over the target vocabulary.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        directions = 2 if c.bidirectional else 1
        enc_out = directions * c.hidden
        self.src_embed = nn.Embedding(c.src_vocab, c.emb, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.emb, padding_idx=PAD_ID)
        self.encoder = nn.GRU(c.emb, c.hidden, batch_first=True, bidirectional=c.bidirectional)
        self.bridge = nn.Linear(enc_out, c.hidden)
        self.decoder = nn.GRU(c.emb, c.hidden, batch_first=True)
        self.attention = AdditiveAttention(c.hidden, enc_out, c.attn_size) if c.attention else None
        self.combine = nn.Linear(c.hidden + (enc_out if c.attention else 0), c.out_size)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.out_size, c.tgt_vocab)

    def encode(self, src, src_len):
        """``values (N, S, He), mask (N, S), h0 (1, N, H), keys (N, S, A) or None``."""
        packed = pack_padded_sequence(self.drop(self.src_embed(src)), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, h_n = self.encoder(packed)
        values, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (N, S, He)
        final = torch.cat(list(h_n), dim=-1)  # (N, He): last forward state and first backward state
        h0 = torch.tanh(self.bridge(final))[None]  # (1, N, H)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len.to(src.device)[:, None]  # (N, S)
        keys = self.attention.key(values) if self.attention is not None else None
        return values, mask, h0, keys

    def _project(self, s, values, mask, keys):
        if self.attention is None:
            return self.out(self.drop(torch.tanh(self.combine(s)))), None
        context, weights = self.attention(s, values, mask, keys)
        return self.out(self.drop(torch.tanh(self.combine(torch.cat([s, context], dim=-1))))), weights

    def forward(self, src, src_len, tgt_in, return_attention: bool = False):
        """Logits ``(N, T, V)`` for the target inputs ``tgt_in (N, T)`` (``<bos> y_1 ... y_{T-1}``).

        With ``return_attention``, also the weights ``(N, T, S)`` (None without attention)."""
        values, mask, h0, keys = self.encode(src, src_len)
        s, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), h0)  # (N, T, H)
        logits, weights = self._project(s, values, mask, keys)
        return (logits, weights) if return_attention else logits

    def step(self, tokens, state):
        """One decoding step: ``tokens (N,)`` and ``state = (h (N, H), values, mask, keys)`` give
        ``log_probs (N, V)`` and the next state (every part batch first, so a beam can reorder it)."""
        h, values, mask, keys = state
        s, h = self.decoder(self.tgt_embed(tokens)[:, None, :], h[None].contiguous())  # s (N, 1, H)
        logits, _ = self._project(s, values, mask, keys)
        return torch.log_softmax(logits[:, 0], dim=-1), (h[0], values, mask, keys)


def sequence_loss(logits, tgt_out, reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy of ``logits (N, T, V)`` against ``tgt_out (N, T)``, padding ignored (mean per token); with
    ``label_smoothing`` eps, against targets that put 1 - eps on the word and spread eps over the vocabulary."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                       ignore_index=PAD_ID, reduction=reduction, label_smoothing=label_smoothing)


# ========================================================================================= decoding
def _take(state, idx):
    """Rows ``idx`` of every array (numpy or torch, batch first) in the tuple ``state``; None stays None."""
    out = []
    for x in state:
        if x is None:
            out.append(None)
        elif isinstance(x, torch.Tensor):
            out.append(x[torch.as_tensor(idx, device=x.device)])
        else:
            out.append(np.asarray(x)[idx])
    return tuple(out)


def greedy_decode(step: Callable, state, n: int, max_len: int, bos: int = BOS_ID, eos: int = EOS_ID,
                  pad: int = PAD_ID) -> np.ndarray:
    """Pick the most probable token at every step, feeding it back, until every row has emitted ``eos``.

    Args:
        step: ``step(tokens (n,) int64 array, state) -> (log_probs (n, V) array, state)``.
        state: the decoder's initial state (whatever ``step`` understands).
        n: number of sentences; max_len: most tokens generated (``eos`` included).

    Returns:
        tokens ``(n, L)`` int64, ``L <= max_len``: each row up to and including its ``eos``, then ``pad``
        (a row that never emits ``eos`` has ``max_len`` tokens). Ties go to the lowest token id.
    """
    tokens = np.full(n, bos, dtype=np.int64)
    out = np.full((n, max_len), pad, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for t in range(max_len):
        log_probs, state = step(tokens, state)
        nxt = np.where(done, pad, np.asarray(log_probs).argmax(axis=1))
        out[:, t] = nxt
        done |= nxt == eos
        tokens = nxt
        if done.all():
            return out[:, :t + 1]
    return out


def beam_search(step: Callable, state, n: int, beam: int, max_len: int, alpha: float = 1.0, bos: int = BOS_ID,
                eos: int = EOS_ID, pad: int = PAD_ID) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``beam`` best partial translations of each sentence; return the best finished one.

    At each step every kept hypothesis is extended by every token, and the ``beam`` highest total log-probabilities
    survive. A hypothesis that emitted ``eos`` stays in the beam unchanged (extended only by ``pad``, at no cost).
    At the end, hypotheses are ranked by ``sum log p / length ** alpha`` (length normalisation, with ``eos``
    counted in the length; ``alpha = 0``: the raw sum, which favours short outputs). With ``beam = 1`` this is
    :func:`greedy_decode`.

    Args:
        step, state, n, max_len: as in :func:`greedy_decode`; the arrays (or tensors) of ``state`` have the
            sentences along their first axis (torch RNN states ``(1, n, H)``: along their second).
        beam: the beam width K.

    Returns:
        tokens ``(n, L)`` int64 (as in :func:`greedy_decode`), and each chosen hypothesis's normalised score (n,).
    """
    rows = np.repeat(np.arange(n), beam)
    state = _take(state, rows)
    scores = np.full((n, beam), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis at the start
    seqs = np.zeros((n, beam, 0), dtype=np.int64)
    finished = np.zeros((n, beam), dtype=bool)
    lengths = np.zeros((n, beam))
    tokens = np.full(n * beam, bos, dtype=np.int64)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        log_probs = np.asarray(log_probs, dtype=np.float64)
        V = log_probs.shape[1]
        log_probs = log_probs.reshape(n, beam, V)
        stay = np.full(V, -np.inf)
        stay[pad] = 0.0
        log_probs = np.where(finished[:, :, None], stay, log_probs)
        flat = (scores[:, :, None] + log_probs).reshape(n, beam * V)
        top = _top_k(flat, beam)  # (n, K), ties to the lowest index
        origin, token = top // V, top % V
        scores = np.take_along_axis(flat, top, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, origin[:, :, None], axis=1), token[:, :, None]], axis=2)
        was_finished = np.take_along_axis(finished, origin, axis=1)
        lengths = np.take_along_axis(lengths, origin, axis=1) + ~was_finished
        finished = was_finished | (token == eos)
        state = _take(state, (origin + beam * np.arange(n)[:, None]).ravel())
        tokens = token.ravel()
        if np.all(finished | np.isneginf(scores)):
            break
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(np.isneginf(scores), -np.inf, scores / np.maximum(lengths, 1) ** alpha)
    best = np.argmax(normalised, axis=1)
    chosen = seqs[np.arange(n), best]
    keep = max(1, int(lengths[np.arange(n), best].max()))
    return chosen[:, :keep], normalised[np.arange(n), best]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's ``k`` largest scores, best first, ties to the lowest index: the same as
    ``np.argsort(-scores, axis=1, kind="stable")[:, :k]``, without sorting whole rows."""
    if k >= scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]  # the k-th largest score of each row
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    for i, row in enumerate(scores):
        candidates = np.flatnonzero(row >= kth[i])  # the k best and any ties with the k-th
        out[i] = candidates[np.argsort(-row[candidates], kind="stable")][:k]
    return out


def model_step(model: Seq2Seq) -> Callable:
    """The ``step`` function of :func:`greedy_decode`/:func:`beam_search` for a torch :class:`Seq2Seq`."""

    def step(tokens, state):
        log_probs, state = model.step(torch.as_tensor(tokens, device=state[1].device), state)
        return log_probs.detach().double().cpu().numpy(), state

    return step


@torch.no_grad()
def translate(model: Seq2Seq, data: PairDataset, tgt_vocab: Vocab, beam: int = 1, alpha: float = 1.0,
              max_len: int = 40, batch_size: int = 256, progress: bool = False) -> list[list[str]]:
    """Translations (token lists, in ``data``'s order) by greedy decoding (``beam=1``) or beam search."""
    model.eval()
    out: list[list[str] | None] = [None] * len(data)
    device = next(model.parameters()).device
    for src, src_len, _, idx in tqdm(data.batches(batch_size), total=-(-len(data) // batch_size),
                                     desc="translate", leave=False, disable=not progress):
        values, mask, h0, keys = model.encode(src.to(device), src_len.to(device))
        state, n = (h0[0], values, mask, keys), len(idx)
        if beam == 1:
            tokens = greedy_decode(model_step(model), state, n, max_len)
        else:
            tokens, _ = beam_search(model_step(model), state, n, beam, max_len, alpha)
        for i, row in zip(idx.tolist(), tokens, strict=True):
            out[i] = tgt_vocab.decode(row)
    return out  # type: ignore[return-value]


@torch.no_grad()
def attention_map(model: Seq2Seq, src_ids: np.ndarray, out_ids: Sequence[int]) -> np.ndarray:
    """The attention weights ``(len(out_ids), len(src_ids))`` of ``model`` producing ``out_ids`` for one source
    (the decoder fed ``<bos>`` and ``out_ids[:-1]``, i.e. the weights seen while it decoded ``out_ids``)."""
    model.eval()
    device = next(model.parameters()).device
    src = torch.as_tensor(np.asarray(src_ids)[None], device=device)
    tgt_in = torch.as_tensor(np.array([[BOS_ID, *list(out_ids)[:-1]]]), device=device)
    _, weights = model(src, torch.tensor([src.shape[1]]), tgt_in, return_attention=True)
    if weights is None:
        raise ValueError("this model has no attention")
    return weights[0].double().cpu().numpy()


# ========================================================================================= BLEU
def ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of ``tokens``."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int = 4) -> dict:
    """Corpus-level BLEU (Papineni et al., 2002) with one reference per sentence, on 0-100 like sacrebleu.

    .. math::
        \\mathrm{BLEU} = 100 \\cdot \\mathrm{BP} \\cdot \\exp\\Big(\\frac{1}{N}\\sum_{n=1}^{N} \\log p_n\\Big),
        \\quad \\mathrm{BP} = \\min(1, e^{1 - r/c})

    ``p_n`` is the clipped n-gram precision over the whole corpus: each hypothesis n-gram counts at most as
    many times as it occurs in its reference; ``c`` and ``r`` are the hypotheses' and references' total
    lengths. No smoothing: a corpus with no matching 4-gram scores 0 (sacrebleu's ``smooth_method="none"``).

    Returns:
        ``{"bleu", "precisions" (percent, one per n), "bp", "hyp_len", "ref_len", "matches", "totals"}``.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_n + 1):
            h, r = ngrams(hyp, n), ngrams(ref, n)
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    precisions = [100.0 * m / t if t else 0.0 for m, t in zip(matches, totals, strict=True)]
    if hyp_len == 0:
        bp = 0.0
    else:
        bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    if min(matches) == 0:
        bleu = 0.0
    else:
        bleu = 100.0 * bp * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n)
    return {"bleu": bleu, "precisions": precisions, "bp": bp, "hyp_len": hyp_len, "ref_len": ref_len,
            "matches": matches.tolist(), "totals": totals.tolist()}


def bleu_by_length(hypotheses, references, lengths, edges: Sequence[int]) -> list[dict]:
    """:func:`corpus_bleu` of the sentences whose ``lengths`` fall in ``[edges[i], edges[i+1])``, per bin."""
    lengths = np.asarray(lengths)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        idx = np.flatnonzero((lengths >= lo) & (lengths < hi))
        score = corpus_bleu([hypotheses[i] for i in idx], [references[i] for i in idx]) if len(idx) else None
        out.append({"lo": int(lo), "hi": int(hi), "n": int(len(idx)),
                    "bleu": None if score is None else score["bleu"]})
    return out


# ========================================================================================= training
@dataclass
class TrainConfig:
    """Hyperparameters of :func:`train` (stored in checkpoints; a resumed run must use the same ones)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    clip_grad: float | None = 1.0
    seed: int = 0
    max_seconds: float | None = None  # stop after the batch during which training time passes this budget
    checkpoint_every: int = 200  # batches between checkpoints (and one at each epoch's end)
    label_smoothing: float = 0.0  # of the training loss (the recorded losses stay plain cross-entropy)
    schedule: str = "constant"  # or "linear": the learning rate falls linearly to 0 at the end of the run
    warmup: int = 0  # batches over which the learning rate rises linearly from lr / warmup to lr

    def lr_at(self, step: int, seconds: float, total_steps: int) -> float:
        """Learning rate of batch ``step`` (0-based), ``seconds`` of training in: with the linear schedule, the
        run's end is whichever comes first, ``max_seconds`` or ``total_steps`` (so a run on a time budget decays by
        the clock, and is not repeatable to the bit across machines)."""
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if self.schedule == "linear":
            done = step / max(total_steps, 1)
            if self.max_seconds:
                done = max(done, seconds / self.max_seconds)
            factor *= max(0.0, 1.0 - done)
        elif self.schedule != "constant":
            raise ValueError(f"schedule is 'constant' or 'linear', not {self.schedule!r}")
        return self.lr * factor

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@torch.no_grad()
def evaluate_loss(model: Seq2Seq, data: PairDataset, batch_size: int = 256) -> float:
    """Mean cross-entropy per target token under teacher forcing (eval mode)."""
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for src, src_len, tgt, _ in data.batches(batch_size):
        src, src_len, tgt = src.to(device), src_len.to(device), tgt.to(device)
        logits = model(src, src_len, tgt[:, :-1])
        total += sequence_loss(logits, tgt[:, 1:], reduction="sum").item()
        count += int((tgt[:, 1:] != PAD_ID).sum())
    return total / max(count, 1)


def train(model: Seq2Seq, data: PairDataset, config: TrainConfig, val: PairDataset | None = None,
          checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
          extra: dict | None = None, stop_after: int | None = None) -> dict:
    """Train with Adam and teacher forcing; return the history.

    Batch order depends only on ``(config.seed, epoch)``; ``last.pt`` (model, optimizer, position, history,
    random-number-generator states) is written atomically every ``checkpoint_every`` batches and at each
    epoch's end, so ``resume=True`` continues from the last checkpoint and ends exactly where an uninterrupted
    run ends (when ``max_seconds`` does not cut either short). ``stop_after`` stops after that many batches in
    this call (to test resuming).

    Returns:
        history: ``step``, ``epoch``, ``train_loss`` (mean per token over each checkpoint interval),
        ``val_loss`` (at each epoch's end, when ``val`` is given), ``seconds`` (training time), ``done`` (epochs
        all ran).
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = {"step": [], "epoch": [], "train_loss": [], "val_loss": [], "seconds": 0.0, "done": False}
    position, resumed = (1, 0), None  # (epoch, batches done in it); the pending loss sums
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    set_seed(config.seed)
    if resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state["train_config"] != config.to_dict():
            raise ValueError(f"cannot resume: the checkpoint was trained with {state['train_config']}, "
                             f"not {config.to_dict()}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, position, resumed = state["history"], tuple(state["position"]), state["pending"]
        set_rng_states(state["rng"])

    n_batches = -(-len(data) // config.batch_size)
    steps_here, pending = 0, [0.0, 0]  # loss sum and token count since the last history entry

    def save(epoch, done_in_epoch):
        if ckpt is not None:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "position": (epoch, done_in_epoch), "pending": list(pending), "history": history,
                             "rng": rng_states(), "train_config": config.to_dict(),
                             "model_config": model.config.to_dict(), "extra": extra or {}}, ckpt)

    def record(epoch, b):
        history["step"].append((epoch - 1) * n_batches + b + 1)
        history["epoch"].append((epoch - 1) + (b + 1) / n_batches)
        history["train_loss"].append(pending[0] / max(pending[1], 1))
        pending[:] = [0.0, 0]

    if resumed is not None:
        pending[:] = resumed
    for epoch in range(position[0], config.epochs + 1):
        skip = position[1] if epoch == position[0] else 0
        if skip >= n_batches:
            continue
        model.train()
        bar = tqdm(total=n_batches, initial=skip, desc=f"epoch {epoch}", leave=False, disable=not progress,
                   mininterval=2.0)
        for b, (src, src_len, tgt, _) in enumerate(data.batches(config.batch_size, shuffle=True,
                                                                seed=(config.seed, epoch))):
            if b < skip:
                continue
            t0 = time.perf_counter()
            src, src_len, tgt = src.to(device), src_len.to(device), tgt.to(device)
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at((epoch - 1) * n_batches + b, history["seconds"], config.epochs * n_batches)
            logits = model(src, src_len, tgt[:, :-1])
            loss = sequence_loss(logits, tgt[:, 1:], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            optimizer.step()
            history["seconds"] += time.perf_counter() - t0
            n_tok = int((tgt[:, 1:] != PAD_ID).sum())
            if config.label_smoothing:  # record the plain cross-entropy
                with torch.no_grad():
                    loss = sequence_loss(logits, tgt[:, 1:])
            pending[0] += loss.item() * n_tok
            pending[1] += n_tok
            steps_here += 1
            bar.update(1)
            last = b + 1 == n_batches
            out_of_time = config.max_seconds is not None and history["seconds"] >= config.max_seconds
            if (b + 1) % config.checkpoint_every == 0 or last or out_of_time:
                record(epoch, b)
                if last and val is not None and len(val):
                    history["val_loss"].append(evaluate_loss(model, val))
                    model.train()
                save(epoch, b + 1)
            elif stop_after is not None and steps_here >= stop_after:
                save(epoch, b + 1)
            if out_of_time or (stop_after is not None and steps_here >= stop_after):
                bar.close()
                return history
        bar.close()
        if progress:
            tqdm.write(f"epoch {epoch}: train loss {history['train_loss'][-1]:.3f}"
                       + (f", val loss {history['val_loss'][-1]:.3f}" if history["val_loss"] else "")
                       + f" ({history['seconds']:.0f} s)")
    history["done"] = True
    save(config.epochs, n_batches)
    return history
