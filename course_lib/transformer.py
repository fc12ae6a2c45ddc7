r"""A small Transformer encoder-decoder for translation (PyTorch), a drop-in for :class:`course_lib.seq2seq.Seq2Seq`.

Dimension legend: N batch, S source length, T target length, E model width, V vocabulary.

The same interface as the recurrent models, so that the course trains and decodes both with the same code
(:func:`course_lib.seq2seq.train`, :func:`course_lib.seq2seq.greedy_decode` and
:func:`course_lib.seq2seq.beam_search`) and the translation benchmark reports them side by side:

* ``model(src, src_len, tgt_in) -> logits (N, T, V)`` under teacher forcing, every position at once: the decoder's
  self-attention has a causal mask, so position t sees the target words before it and no later one;
* ``model.step(tokens, state)`` for decoding, one position at a time: the state caches each decoder layer's
  keys and values (of the source, computed once, and of the prefix so far), so a step costs one position's work;
* ``model.config.to_dict()`` for checkpoints.

Encoder and decoder are ``torch.nn.TransformerEncoder/Decoder`` layers (Vaswani et al. 2017) with pre-layer
normalisation (``norm_first``, which trains without a learning-rate warm-up at this size), sinusoidal positions
(:func:`course_lib.attention.sinusoidal_positions`) added to embeddings scaled by :math:`\sqrt{E}`, and the output
projection tied to the target embedding (Press and Wolf 2017).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .attention import sinusoidal_positions
from .spa_eng import PAD_ID, PairDataset, Vocab


@dataclass
class TransformerConfig:
    """The shape of a :class:`TransformerSeq2Seq` (stored with checkpoints)."""

    src_vocab: int
    tgt_vocab: int
    width: int = 256
    heads: int = 4
    ff: int = 1024
    encoder_layers: int = 3
    decoder_layers: int = 3
    dropout: float = 0.1
    max_len: int = 128

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class TransformerSeq2Seq(nn.Module):
    """Transformer encoder-decoder with the interface of :class:`course_lib.seq2seq.Seq2Seq`."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab, c.width, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.width, padding_idx=PAD_ID)
        self.register_buffer("positions", torch.tensor(sinusoidal_positions(c.max_len, c.width), dtype=torch.float32),
                             persistent=False)
        layer = dict(d_model=c.width, nhead=c.heads, dim_feedforward=c.ff, dropout=c.dropout, batch_first=True,
                     norm_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), c.encoder_layers,
                                             norm=nn.LayerNorm(c.width), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), c.decoder_layers,
                                             norm=nn.LayerNorm(c.width))
        self.drop = nn.Dropout(c.dropout)
        self.out_bias = nn.Parameter(torch.zeros(c.tgt_vocab))
        for table in (self.src_embed, self.tgt_embed):  # scaled by sqrt(E) on the way in, and the target table is
            # also the output projection: with torch's default N(0, 1) the first logits reach about sqrt(E) * 4
            # and the first loss about 23 nats (ln V is 9); N(0, 1/E) starts both at the usual scale
            nn.init.normal_(table.weight, std=c.width**-0.5)
            with torch.no_grad():
                table.weight[PAD_ID].zero_()

    def _embed(self, table: nn.Embedding, ids, start: int = 0):
        """Embeddings of ``ids (N, L)``, scaled, plus the encodings of positions ``start ... start + L - 1``."""
        end = start + ids.shape[1]
        if end > self.config.max_len:
            raise ValueError(f"a sequence of {end} tokens is longer than max_len={self.config.max_len}")
        return self.drop(table(ids) * math.sqrt(self.config.width) + self.positions[start:end])

    def encode(self, src, src_len):
        """``memory (N, S, E)`` and ``pad (N, S)``, True at padding positions (torch's convention)."""
        pad = torch.arange(src.shape[1], device=src.device)[None, :] >= src_len.to(src.device)[:, None]
        return self.encoder(self._embed(self.src_embed, src), src_key_padding_mask=pad), pad

    def decode(self, tgt_in, memory, pad):
        """Logits ``(N, T, V)`` of every target position, each seeing only the positions before it."""
        T = tgt_in.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tgt_in.device), diagonal=1)  # True: hidden
        out = self.decoder(self._embed(self.tgt_embed, tgt_in), memory, tgt_mask=causal,
                           tgt_key_padding_mask=tgt_in == PAD_ID, memory_key_padding_mask=pad)
        return out @ self.tgt_embed.weight.T + self.out_bias  # tied output projection

    def forward(self, src, src_len, tgt_in):
        memory, pad = self.encode(src, src_len)
        return self.decode(tgt_in, memory, pad)

    def initial_state(self, src, src_len):
        """The decoding state before the first step (a flat tuple of batch-first tensors, so that beam search can
        reorder it): the source's padding ``(N, S)``, the target prefix's padding ``(N, 0)``, and per decoder layer
        the cross-attention keys and values of the encoded source ``(N, heads, S, E / heads)`` and the
        self-attention keys and values of the prefix so far ``(N, heads, 0, E / heads)``."""
        memory, pad = self.encode(src, src_len)
        empty = memory.new_zeros(src.shape[0], self.config.heads, 0, self.config.width // self.config.heads)
        cross, prefix = [], []
        for layer in self.decoder.layers:
            attn = layer.multihead_attn
            E = self.config.width
            k = F.linear(memory, attn.in_proj_weight[E:2 * E], attn.in_proj_bias[E:2 * E])
            v = F.linear(memory, attn.in_proj_weight[2 * E:], attn.in_proj_bias[2 * E:])
            cross += [self._heads(k), self._heads(v)]
            prefix += [empty, empty]
        return (pad, torch.zeros(src.shape[0], 0, dtype=torch.bool, device=src.device), *cross, *prefix)

    def _heads(self, x):
        """``(N, L, E) -> (N, heads, L, E / heads)``."""
        N, L, _ = x.shape
        return x.view(N, L, self.config.heads, -1).transpose(1, 2)

    def _attend(self, attn: nn.MultiheadAttention, q, k, v, hidden):
        """One query per sentence against cached keys and values; ``hidden (N, L)`` True where a key is hidden."""
        E = self.config.width
        q = self._heads(F.linear(q, attn.in_proj_weight[:E], attn.in_proj_bias[:E]))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=~hidden[:, None, None, :])
        return attn.out_proj(out.transpose(1, 2).reshape(q.shape[0], 1, E))

    def step(self, tokens, state):
        """``log_probs (N, V)`` of the next word after ``tokens (N,)``, and the next state.

        Incremental: the new position's self-attention keys and values are appended to the cache, and only the
        new position goes through each layer (with pre-layer normalisation a position's keys never change once
        computed), so a step costs one position's work instead of the whole prefix's. Equal, to rounding, to
        :meth:`decode` on the whole prefix (a test checks every position)."""
        n_layers = len(self.decoder.layers)
        pad, prefix_pad, cache = state[0], state[1], list(state[2:])
        cross, prefix = cache[:2 * n_layers], cache[2 * n_layers:]
        tokens = torch.as_tensor(tokens, device=pad.device)
        t = prefix_pad.shape[1]
        prefix_pad = torch.cat([prefix_pad, (tokens == PAD_ID)[:, None]], dim=1)
        x = self._embed(self.tgt_embed, tokens[:, None], t)
        E = self.config.width
        hidden = prefix_pad.clone()  # the prefix's padding, the same for every layer
        hidden[:, -1] = False  # torch's decoder: a padded query position still sees itself (and is ignored)
        new_prefix = []
        for i, layer in enumerate(self.decoder.layers):
            h = layer.norm1(x)
            attn = layer.self_attn
            k = torch.cat([prefix[2 * i], self._heads(F.linear(h, attn.in_proj_weight[E:2 * E],
                                                                attn.in_proj_bias[E:2 * E]))], dim=2)
            v = torch.cat([prefix[2 * i + 1], self._heads(F.linear(h, attn.in_proj_weight[2 * E:],
                                                                    attn.in_proj_bias[2 * E:]))], dim=2)
            new_prefix += [k, v]
            x = x + layer.dropout1(self._attend(attn, h, k, v, hidden))
            x = x + layer.dropout2(self._attend(layer.multihead_attn, layer.norm2(x), cross[2 * i],
                                                cross[2 * i + 1], pad))
            x = x + layer._ff_block(layer.norm3(x))
        out = self.decoder.norm(x)[:, -1]
        logits = out @ self.tgt_embed.weight.T + self.out_bias
        return torch.log_softmax(logits, dim=-1), (pad, prefix_pad, *cross, *new_prefix)


def transformer_step(model: TransformerSeq2Seq):
    """The ``step`` function of :func:`course_lib.seq2seq.greedy_decode`/``beam_search`` for this model."""

    def step(tokens, state):
        log_probs, state = model.step(tokens, state)
        return log_probs.detach().double().cpu().numpy(), state

    return step


@torch.no_grad()
def translate(model: TransformerSeq2Seq, data: PairDataset, tgt_vocab: Vocab, beam: int = 1, alpha: float = 1.0,
              max_len: int = 40, batch_size: int = 256) -> list[list[str]]:
    """Translations of ``data`` (token lists, in its order), greedy (``beam=1``) or by beam search."""
    from .seq2seq import beam_search, greedy_decode

    model.eval()
    out: list[list[str] | None] = [None] * len(data)
    device = next(model.parameters()).device
    for src, src_len, _, idx in data.batches(batch_size):
        state = model.initial_state(src.to(device), src_len.to(device))
        if beam == 1:
            tokens = greedy_decode(transformer_step(model), state, len(idx), max_len)
        else:
            tokens, _ = beam_search(transformer_step(model), state, len(idx), beam, max_len, alpha)
        for i, row in zip(idx.tolist(), tokens, strict=True):
            out[i] = tgt_vocab.decode(row)
    return out  # type: ignore[return-value]


@torch.no_grad()
def cross_attention_map(model: TransformerSeq2Seq, src_ids: np.ndarray, out_ids, layer: int = -1) -> np.ndarray:
    """Cross-attention weights ``(len(out_ids), len(src_ids))`` of one decoder layer, averaged over its heads,
    while the decoder, fed ``<bos>`` and ``out_ids[:-1]``, produced ``out_ids``."""
    from .spa_eng import BOS_ID

    model.eval()
    src = torch.as_tensor(np.asarray(src_ids))[None]
    memory, pad = model.encode(src, torch.tensor([src.shape[1]]))
    tgt_in = torch.as_tensor([BOS_ID, *list(out_ids)[:-1]])[None]
    captured = {}
    block = model.decoder.layers[layer]
    original = block.multihead_attn.forward

    def capture(*args, **kwargs):
        kwargs.update(need_weights=True, average_attn_weights=True)
        out, weights = original(*args, **kwargs)
        captured["weights"] = weights
        return out, weights

    block.multihead_attn.forward = capture
    try:
        model.decode(tgt_in, memory, pad)
    finally:
        block.multihead_attn.forward = original
    return captured["weights"][0].double().numpy()
