"""Plausible wrong answers to assignment 06_seq2seq (the format is documented in tests/test_mistakes.py)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_variants", Path(__file__).with_name("_variants.py"))
_variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_variants)
_mistake = _variants.mistake_maker("06_seq2seq")
_BEAM, _BLEU = "test_beam_search", "test_corpus_bleu"

MISTAKES = [
    {
        "name": "attention_forward_no_mask",
        "cell": "attention_forward",
        "source": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    u = np.tanh((s @ Wq)[:, None, :] + h @ Wk)
    e = u @ v
    e = e - e.max(axis=1, keepdims=True)
    a = np.exp(e)
    a /= a.sum(axis=1, keepdims=True)
    c = np.einsum("ns,nsh->nh", a, h)
    return c, a, (s, h, mask, Wq, Wk, v, u, a)
''',
        "caught_by": "test_attention_forward",
        "visible": True,
        "message": "padding positions get weight",
    },
    {
        "name": "attention_forward_softmax_over_batch",
        "cell": "attention_forward",
        "source": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    u = np.tanh((s @ Wq)[:, None, :] + h @ Wk)
    e = np.where(mask, u @ v, -np.inf)
    a = np.exp(e)
    a /= a.sum(axis=0, keepdims=True)
    c = np.einsum("ns,nsh->nh", a, h)
    return c, a, (s, h, mask, Wq, Wk, v, u, a)
''',
        "caught_by": "test_attention_forward",
        "visible": True,
        "message": "the softmax runs over the batch",
    },
    {
        "name": "attention_forward_no_max_shift",
        "cell": "attention_forward",
        "source": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    u = np.tanh((s @ Wq)[:, None, :] + h @ Wk)
    a = np.where(mask, np.exp(u @ v), 0.0)
    a /= a.sum(axis=1, keepdims=True)
    c = np.einsum("ns,nsh->nh", a, h)
    return c, a, (s, h, mask, Wq, Wk, v, u, a)
''',
        "caught_by": "test_attention_forward",
        "visible": False,
        "message": "subtract each row's maximum",
    },
    {
        "name": "attention_backward_no_softmax_coupling",
        "cell": "attention_backward",
        "source": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    da = np.einsum("nh,nsh->ns", dc, h)
    dh = a[:, :, None] * dc[:, None, :]
    de = a * da
    dv = np.einsum("nsa,ns->a", u, de)
    dpre = de[:, :, None] * v * (1.0 - u * u)
    dq = dpre.sum(axis=1)
    ds = dq @ Wq.T
    dWq = s.T @ dq
    dWk = np.einsum("nse,nsa->ea", h, dpre)
    dh += dpre @ Wk.T
    return ds, dh, dWq, dWk, dv
''',
        "caught_by": "test_attention_backward",
        "visible": True,
        "message": "dv ignores the softmax's coupling",
    },
    {
        "name": "attention_backward_no_tanh_derivative",
        "cell": "attention_backward",
        "source": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    da = np.einsum("nh,nsh->ns", dc, h)
    dh = a[:, :, None] * dc[:, None, :]
    de = a * (da - np.sum(a * da, axis=1, keepdims=True))
    dv = np.einsum("nsa,ns->a", u, de)
    dpre = de[:, :, None] * v
    dq = dpre.sum(axis=1)
    ds = dq @ Wq.T
    dWq = s.T @ dq
    dWk = np.einsum("nse,nsa->ea", h, dpre)
    dh += dpre @ Wk.T
    return ds, dh, dWq, dWk, dv
''',
        "caught_by": "test_attention_backward",
        "visible": True,
        "message": "did you forget the derivative of tanh",
    },
    {
        "name": "attention_backward_dh_values_only",
        "cell": "attention_backward",
        "source": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    da = np.einsum("nh,nsh->ns", dc, h)
    dh = a[:, :, None] * dc[:, None, :]
    de = a * (da - np.sum(a * da, axis=1, keepdims=True))
    dv = np.einsum("nsa,ns->a", u, de)
    dpre = de[:, :, None] * v * (1.0 - u * u)
    dq = dpre.sum(axis=1)
    ds = dq @ Wq.T
    dWq = s.T @ dq
    dWk = np.einsum("nse,nsa->ea", h, dpre)
    return ds, dh, dWq, dWk, dv
''',
        "caught_by": "test_attention_backward",
        "visible": True,
        "message": "dh only has the path through the weighted sum",
    },
    {
        "name": "greedy_does_not_stop_at_eos",
        "cell": "greedy_decode",
        "source": '''
def greedy_decode(step, state, n, max_len):
    tokens, rows = np.full(n, BOS), []
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        tokens = log_probs.argmax(axis=1)
        rows.append(tokens)
    return np.stack(rows, axis=1)
''',
        "caught_by": "test_greedy_decode",
        "visible": True,
        "message": "rows go on after EOS",
    },
    {
        "name": "greedy_feeds_bos_every_step",
        "cell": "greedy_decode",
        "source": '''
def greedy_decode(step, state, n, max_len):
    rows, done = [], np.zeros(n, dtype=bool)
    for _ in range(max_len):
        log_probs, state = step(np.full(n, BOS), state)
        nxt = np.where(done, PAD, log_probs.argmax(axis=1))
        rows.append(nxt)
        done |= nxt == EOS
        if done.all():
            break
    return np.stack(rows, axis=1)
''',
        "caught_by": "test_greedy_decode",
        "visible": True,
        "message": "the model is fed BOS at every step",
    },
    {
        "name": "beam_search_without_length_normalisation",
        "cell": "beam_search",
        "source": '''
def beam_search(step, state, n, beam, max_len, alpha=1.0):
    state = tuple(x[np.repeat(np.arange(n), beam)] for x in state)
    scores = np.full((n, beam), -np.inf)
    scores[:, 0] = 0.0
    seqs = np.zeros((n, beam, 0), dtype=np.int64)
    finished = np.zeros((n, beam), dtype=bool)
    lengths = np.zeros((n, beam))
    tokens = np.full(n * beam, BOS, dtype=np.int64)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        V = log_probs.shape[1]
        log_probs = log_probs.reshape(n, beam, V)
        stay = np.full(V, -np.inf)
        stay[PAD] = 0.0
        log_probs = np.where(finished[:, :, None], stay, log_probs)
        flat = (scores[:, :, None] + log_probs).reshape(n, beam * V)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :beam]
        origin, token = top // V, top % V
        scores = np.take_along_axis(flat, top, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, origin[:, :, None], axis=1), token[:, :, None]], axis=2)
        was_finished = np.take_along_axis(finished, origin, axis=1)
        lengths = np.take_along_axis(lengths, origin, axis=1) + ~was_finished
        finished = was_finished | (token == EOS)
        state = tuple(x[(origin + beam * np.arange(n)[:, None]).ravel()] for x in state)
        tokens = token.ravel()
        if np.all(finished | np.isneginf(scores)):
            break
    best = np.argmax(scores, axis=1)
    chosen = seqs[np.arange(n), best]
    keep = max(1, int(lengths[np.arange(n), best].max()))
    return chosen[:, :keep], scores[np.arange(n), best]
''',
        "caught_by": "test_beam_search",
        "visible": True,
        "message": "divide by length ** alpha",
    },
    {
        "name": "beam_search_state_not_reordered",
        "cell": "beam_search",
        "source": '''
def beam_search(step, state, n, beam, max_len, alpha=1.0):
    state = tuple(x[np.repeat(np.arange(n), beam)] for x in state)
    scores = np.full((n, beam), -np.inf)
    scores[:, 0] = 0.0
    seqs = np.zeros((n, beam, 0), dtype=np.int64)
    finished = np.zeros((n, beam), dtype=bool)
    lengths = np.zeros((n, beam))
    tokens = np.full(n * beam, BOS, dtype=np.int64)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        V = log_probs.shape[1]
        log_probs = log_probs.reshape(n, beam, V)
        stay = np.full(V, -np.inf)
        stay[PAD] = 0.0
        log_probs = np.where(finished[:, :, None], stay, log_probs)
        flat = (scores[:, :, None] + log_probs).reshape(n, beam * V)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :beam]
        origin, token = top // V, top % V
        scores = np.take_along_axis(flat, top, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, origin[:, :, None], axis=1), token[:, :, None]], axis=2)
        was_finished = np.take_along_axis(finished, origin, axis=1)
        lengths = np.take_along_axis(lengths, origin, axis=1) + ~was_finished
        finished = was_finished | (token == EOS)
        tokens = token.ravel()
        if np.all(finished | np.isneginf(scores)):
            break
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(np.isneginf(scores), -np.inf, scores / np.maximum(lengths, 1) ** alpha)
    best = np.argmax(normalised, axis=1)
    chosen = seqs[np.arange(n), best]
    keep = max(1, int(lengths[np.arange(n), best].max()))
    return chosen[:, :keep], normalised[np.arange(n), best]
''',
        "caught_by": "test_beam_search",
        "visible": True,
        "message": "the decoder state does not follow the hypotheses",
    },
    {
        "name": "bleu_without_clipping",
        "cell": "corpus_bleu",
        "source": '''
def corpus_bleu(hypotheses, references, max_n=4):
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    c = r = 0
    for hyp, ref_ in zip(hypotheses, references):
        c += len(hyp)
        r += len(ref_)
        for n in range(1, max_n + 1):
            hc = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            rc = Counter(tuple(ref_[i:i + n]) for i in range(len(ref_) - n + 1))
            matches[n - 1] += sum(k for g, k in hc.items() if g in rc)
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if c == 0 or matches.min() == 0:
        return 0.0
    bp = 1.0 if c > r else float(np.exp(1 - r / c))
    return float(100 * bp * np.exp(np.mean(np.log(matches / totals))))
''',
        "caught_by": "test_corpus_bleu",
        "visible": True,
        "message": "the n-gram counts are not clipped",
    },
    {
        "name": "bleu_mean_of_sentences",
        "cell": "corpus_bleu",
        "source": '''
def corpus_bleu(hypotheses, references, max_n=4):
    def one(hyp, ref_):
        matches, totals = np.zeros(max_n), np.zeros(max_n)
        for n in range(1, max_n + 1):
            hc = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            rc = Counter(tuple(ref_[i:i + n]) for i in range(len(ref_) - n + 1))
            matches[n - 1] += sum(min(k, rc[g]) for g, k in hc.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
        if len(hyp) == 0 or matches.min() == 0:
            return 0.0
        bp = 1.0 if len(hyp) > len(ref_) else float(np.exp(1 - len(ref_) / len(hyp)))
        return float(100 * bp * np.exp(np.mean(np.log(matches / totals))))
    return float(np.mean([one(h, r) for h, r in zip(hypotheses, references)]))
''',
        "caught_by": "test_corpus_bleu",
        "visible": True,
        "message": "this is the mean of sentence-level BLEU",
    },
    {
        "name": "bleu_without_brevity_penalty",
        "cell": "corpus_bleu",
        "source": '''
def corpus_bleu(hypotheses, references, max_n=4):
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    c = 0
    for hyp, ref_ in zip(hypotheses, references):
        c += len(hyp)
        for n in range(1, max_n + 1):
            hc = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            rc = Counter(tuple(ref_[i:i + n]) for i in range(len(ref_) - n + 1))
            matches[n - 1] += sum(min(k, rc[g]) for g, k in hc.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if c == 0 or matches.min() == 0:
        return 0.0
    return float(100 * np.exp(np.mean(np.log(matches / totals))))
''',
        "caught_by": "test_corpus_bleu",
        "visible": True,
        "message": "the brevity penalty is missing",
    },
    # the solution without its early stop: right tokens, but always max_len columns
    _mistake("greedy_runs_to_max_len", "greedy_decode",
             [("        if done.all():\n            return out[:, :t + 1]\n", "")],
             "test_greedy_decode", "has max_len columns"),
    # --- beam search, as students get it wrong (each one change to the solution)
    _mistake("beam_search_no_eos_stop", "beam_search",
             [("        log_probs = np.where(finished[:, :, None], stay, log_probs)\n", "")], _BEAM,
             "hypotheses go on after EOS"),
    _mistake("beam_search_log_probs_not_summed", "beam_search",
             [("flat = (scores[:, :, None] + log_probs).reshape(n, beam * V)",
               "flat = log_probs.reshape(n, beam * V)")],
             _BEAM, "ranked by the log-probability of their last token"),
    _mistake("beam_search_length_counts_pad", "beam_search",
             [("lengths = np.take_along_axis(lengths, origin, axis=1) + ~was_finished",
               "lengths = np.take_along_axis(lengths, origin, axis=1) + 1")], _BEAM,
             "grows with its PAD steps"),
    _mistake("beam_search_max_len_columns", "beam_search",
             [("keep = max(1, int(lengths[np.arange(n), best].max()))", "keep = seqs.shape[2]")], _BEAM,
             "has max_len columns"),
    _mistake("beam_search_returns_raw_totals", "beam_search",
             [("return chosen[:, :keep], normalised[np.arange(n), best]",
               "return chosen[:, :keep], scores[np.arange(n), best]")],
             _BEAM, "are the raw totals"),
    # --- BLEU
    _mistake("bleu_arithmetic_mean", "corpus_bleu",
             [("np.exp(np.mean(np.log(matches / totals)))", "np.mean(matches / totals)")], _BLEU,
             "BLEU takes their geometric mean"),
    _mistake("bleu_totals_of_reference", "corpus_bleu",
             [("totals[n - 1] += max(0, len(hyp) - n + 1)", "totals[n - 1] += max(0, len(ref_) - n + 1)")], _BLEU,
             "a precision divides by the output's"),
    _mistake("bleu_brevity_inverted", "corpus_bleu",
             [("float(np.exp(1 - r / c))", "float(np.exp(1 - c / r))")], _BLEU,
             "the brevity penalty is exp(1 - c / r)"),
]
