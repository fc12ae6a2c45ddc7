"""Three honest answers to 06_seq2seq, written independently from the released notebook's instructions
(the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "attention_forward": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    q = s @ Wq  # (N, A)
    k = h @ Wk  # (N, S, A)
    u = np.tanh(q[:, np.newaxis, :] + k)
    scores = u @ v  # (N, S)
    scores = np.where(mask, scores, -np.inf)
    scores -= scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    a = weights / weights.sum(axis=1, keepdims=True)
    c = (a[:, :, None] * h).sum(axis=1)
    return c, a, (s, h, mask, Wq, Wk, v, u, a)
''',
        "attention_backward": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    N, S, He = h.shape
    da = (h * dc[:, None, :]).sum(axis=2)  # (N, S)
    dh = a[:, :, None] * dc[:, None, :]  # h as the values
    de = a * da - a * (a * da).sum(axis=1, keepdims=True)
    du = de[:, :, None] * v[None, None, :]  # (N, S, A)
    dz = du * (1 - u ** 2)
    dv = (u * de[:, :, None]).sum(axis=(0, 1))
    dq = dz.sum(axis=1)  # (N, A)
    ds = dq @ Wq.T
    dWq = s.T @ dq
    dWk = h.reshape(N * S, He).T @ dz.reshape(N * S, -1)
    dh = dh + dz @ Wk.T  # h as the keys
    return ds, dh, dWq, dWk, dv
''',
        "greedy_decode": '''
def greedy_decode(step, state, n, max_len):
    prev = np.full(n, BOS, dtype=np.int64)
    finished = np.zeros(n, dtype=bool)
    columns = []
    for _ in range(max_len):
        log_probs, state = step(prev, state)
        best = np.argmax(log_probs, axis=1)
        best[finished] = PAD
        columns.append(best)
        finished = finished | (best == EOS)
        prev = best
        if finished.all():
            break
    if not columns:
        return np.zeros((n, 0), dtype=np.int64)
    return np.stack(columns, axis=1).astype(np.int64)
''',
        "beam_search": '''
def beam_search(step, state, n, beam, max_len, alpha=1.0):
    rows = np.repeat(np.arange(n), beam)
    state = tuple(part[rows] for part in state)
    # hyps[i][k] = (score, tokens, length, finished)
    hyps = [[(0.0 if k == 0 else -np.inf, [], 0, False) for k in range(beam)] for i in range(n)]
    prev = np.full(n * beam, BOS, dtype=np.int64)
    steps = 0
    for _ in range(max_len):
        log_probs, state = step(prev, state)
        log_probs = np.asarray(log_probs)
        V = log_probs.shape[1]
        new_rows, new_prev = [], []
        for i in range(n):
            candidates = []
            for k, (score, toks, length, done) in enumerate(hyps[i]):
                row = log_probs[i * beam + k]
                for w in range(V):
                    if done:
                        add = 0.0 if w == PAD else -np.inf
                    else:
                        add = row[w]
                    candidates.append((score + add, k * V + w, k, w))
            candidates.sort(key=lambda cand: (-cand[0], cand[1]))
            kept = []
            for total, _, k, w in candidates[:beam]:
                score, toks, length, done = hyps[i][k]
                kept.append((total, toks + [w], length + (0 if done else 1), done or w == EOS))
                new_rows.append(i * beam + k)
                new_prev.append(w)
            hyps[i] = kept
        state = tuple(part[np.array(new_rows)] for part in state)
        prev = np.array(new_prev, dtype=np.int64)
        steps += 1
        if all(hyp[3] or hyp[0] == -np.inf for sentence in hyps for hyp in sentence):
            break
    tokens, scores, lengths = [], [], []
    for sentence in hyps:
        normalised = [-np.inf if score == -np.inf else score / max(length, 1) ** alpha
                      for score, _, length, _ in sentence]
        k = int(np.argmax(normalised))
        tokens.append(sentence[k][1])
        scores.append(normalised[k])
        lengths.append(sentence[k][2])
    L = max(1, max(lengths))
    out = np.array(tokens, dtype=np.int64).reshape(n, steps)
    return out[:, :L], np.array(scores)
''',
        "corpus_bleu": '''
def corpus_bleu(hypotheses, references, max_n=4):
    clipped = [0] * max_n
    counts = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_n + 1):
            h_ngrams = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            r_ngrams = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            for gram, count in h_ngrams.items():
                clipped[n - 1] += min(count, r_ngrams[gram])
            counts[n - 1] += sum(h_ngrams.values())
    if hyp_len == 0 or min(clipped) == 0:
        return 0.0
    log_p = np.mean([np.log(m / t) for m, t in zip(clipped, counts)])
    bp = 1.0 if hyp_len > ref_len else np.exp(1 - ref_len / hyp_len)
    return float(100 * bp * np.exp(log_p))
''',
    },
    "s2": {
        "attention_forward": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    u = np.tanh(np.einsum("nh,ha->na", s, Wq)[:, None] + np.einsum("nse,ea->nsa", h, Wk))
    e = np.einsum("nsa,a->ns", u, v)
    e[~mask] = -np.inf
    e = e - np.max(e, axis=1)[:, None]
    a = np.exp(e) / np.sum(np.exp(e), axis=1)[:, None]
    c = np.matmul(a[:, None, :], h)[:, 0, :]
    return c, a, (s, h, mask, Wq, Wk, v, u, a)
''',
        "attention_backward": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    d_a = np.einsum("ne,nse->ns", dc, h)
    weighted = np.einsum("ns,ns->n", a, d_a)
    d_e = a * (d_a - weighted[:, None])  # softmax backward
    d_v = np.einsum("ns,nsa->a", d_e, u)
    d_pre = np.einsum("ns,a->nsa", d_e, v) * (1.0 - np.square(u))
    d_s = np.einsum("nsa,ha->nh", d_pre, Wq)
    d_Wq = np.einsum("nh,nsa->ha", s, d_pre)
    d_Wk = np.einsum("nse,nsa->ea", h, d_pre)
    d_h = np.einsum("ns,ne->nse", a, dc) + np.einsum("nsa,ea->nse", d_pre, Wk)
    return d_s, d_h, d_Wq, d_Wk, d_v
''',
        "greedy_decode": '''
def greedy_decode(step, state, n, max_len):
    out = np.full((n, max_len), PAD, dtype=np.int64)
    current = np.full(n, BOS, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    steps = 0
    while steps < max_len and alive.any():
        log_probs, state = step(current, state)
        token = np.where(alive, np.asarray(log_probs).argmax(axis=-1), PAD)
        out[:, steps] = token
        alive = alive & (token != EOS)
        current = token
        steps += 1
    return out[:, :steps]
''',
        "beam_search": '''
def beam_search(step, state, n, beam, max_len, alpha=1.0):
    state = tuple(part[np.arange(n * beam) // beam] for part in state)
    total = np.where(np.arange(beam) == 0, 0.0, -np.inf)[None, :].repeat(n, axis=0)
    done = np.zeros((n, beam), dtype=bool)
    length = np.zeros((n, beam), dtype=np.int64)
    parents, words = [], []  # back-pointers, followed at the end
    feed = np.full(n * beam, BOS, dtype=np.int64)
    offsets = (np.arange(n) * beam)[:, None]
    for _ in range(max_len):
        log_probs, state = step(feed, state)
        lp = np.asarray(log_probs).reshape(n, beam, -1)
        V = lp.shape[2]
        pad_only = np.full(V, -np.inf)
        pad_only[PAD] = 0.0
        lp = np.where(done[..., None], pad_only, lp)
        cand = (total[..., None] + lp).reshape(n, -1)
        order = np.argsort(-cand, axis=1, kind="stable")[:, :beam]
        parent, word = np.divmod(order, V)
        total = np.take_along_axis(cand, order, axis=1)
        prev_done = np.take_along_axis(done, parent, axis=1)
        length = np.take_along_axis(length, parent, axis=1) + (~prev_done).astype(np.int64)
        done = prev_done | (word == EOS)
        parents.append(parent)
        words.append(word)
        state = tuple(part[(parent + offsets).reshape(-1)] for part in state)
        feed = word.reshape(-1)
        if np.all(done | (total == -np.inf)):
            break
    norm = np.where(total == -np.inf, -np.inf, total / np.maximum(length, 1).astype(np.float64) ** alpha)
    best = np.argmax(norm, axis=1)
    rows = np.arange(n)
    out = np.full((n, len(words)), PAD, dtype=np.int64)
    k = best.copy()
    for t in range(len(words) - 1, -1, -1):
        out[:, t] = words[t][rows, k]
        k = parents[t][rows, k]
    L = max(1, int(length[rows, best].max()))
    return out[:, :L], norm[rows, best]
''',
        "corpus_bleu": '''
def corpus_bleu(hypotheses, references, max_n=4):
    def ngrams(tokens, n):
        return Counter(zip(*[tokens[i:] for i in range(n)]))

    num = np.zeros(max_n)
    den = np.zeros(max_n)
    c = sum(len(hyp) for hyp in hypotheses)
    r = sum(len(ref) for ref in references)
    for hyp, ref in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            hg = ngrams(hyp, n)
            num[n - 1] += sum((hg & ngrams(ref, n)).values())
            den[n - 1] += sum(hg.values())
    if c == 0 or np.any(num == 0):
        return 0.0
    brevity = np.exp(min(0.0, 1 - r / c))
    return float(100 * brevity * np.exp(np.log(num / den).mean()))
''',
    },
    "s3": {
        "attention_forward": '''
def attention_forward(s, h, mask, Wq, Wk, v):
    N, S, He = h.shape
    keys = (h.reshape(N * S, He) @ Wk).reshape(N, S, -1)  # (N, S, A)
    u = np.tanh(keys + np.expand_dims(s @ Wq, 1))
    energy = np.where(mask, np.tensordot(u, v, axes=([2], [0])), -np.inf)
    best = np.max(energy, axis=1, keepdims=True)
    exp_e = np.exp(energy - best)
    a = exp_e / np.sum(exp_e, axis=1, keepdims=True)
    c = np.einsum("ns,nse->ne", a, h)
    cache = (s, h, mask, Wq, Wk, v, u, a)
    return c, a, cache
''',
        "attention_backward": '''
def attention_backward(dc, cache):
    s, h, mask, Wq, Wk, v, u, a = cache
    N = h.shape[0]
    dh = np.zeros_like(h)
    ds = np.zeros_like(s)
    dWq = np.zeros_like(Wq)
    dWk = np.zeros_like(Wk)
    dv = np.zeros_like(v)
    for n in range(N):  # one example at a time, as in the derivation
        dh[n] += np.outer(a[n], dc[n])
        g_a = h[n] @ dc[n]  # (S,)
        g_e = a[n] * (g_a - a[n] @ g_a)
        dv += u[n].T @ g_e
        g_z = np.outer(g_e, v) * (1 - u[n] ** 2)  # (S, A)
        g_q = g_z.sum(axis=0)  # (A,)
        ds[n] = Wq @ g_q
        dWq += np.outer(s[n], g_q)
        dWk += h[n].T @ g_z
        dh[n] += g_z @ Wk.T
    return ds, dh, dWq, dWk, dv
''',
        "greedy_decode": '''
def greedy_decode(step, state, n, max_len):
    result = []
    last = np.array([BOS] * n, dtype=np.int64)
    ended = [False] * n
    for t in range(max_len):
        log_probs, state = step(last, state)
        log_probs = np.asarray(log_probs)
        nxt = np.empty(n, dtype=np.int64)
        for i in range(n):
            if ended[i]:
                nxt[i] = PAD
            else:
                nxt[i] = int(np.argmax(log_probs[i]))
                ended[i] = nxt[i] == EOS
        result.append(nxt)
        last = nxt
        if all(ended):
            break
    if not result:
        return np.zeros((n, 0), dtype=np.int64)
    return np.stack(result, axis=1)
''',
        "beam_search": '''
def beam_search(step, state, n, beam, max_len, alpha=1.0):
    state = tuple(np.repeat(x, beam, axis=0) for x in state)
    seqs = [[[] for _ in range(beam)] for _ in range(n)]
    scores = np.full((n, beam), -np.inf)
    scores[:, 0] = 0.0
    finished = np.zeros((n, beam), dtype=bool)
    lengths = np.zeros((n, beam))
    tokens = np.full(n * beam, BOS, dtype=np.int64)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        log_probs = np.asarray(log_probs)
        V = log_probs.shape[1]
        rows = np.empty(n * beam, dtype=np.int64)
        tokens = np.empty(n * beam, dtype=np.int64)  # a new array: the model may keep the one it was given
        for i in range(n):
            block = log_probs[i * beam:(i + 1) * beam].copy()  # (beam, V)
            block[finished[i]] = -np.inf
            block[finished[i], PAD] = 0.0
            totals = (scores[i][:, None] + block).ravel()
            pick = np.argsort(-totals, kind="stable")[:beam]
            src, tok = pick // V, pick % V
            seqs[i] = [seqs[i][k] + [int(w)] for k, w in zip(src, tok)]
            was = finished[i][src]
            lengths[i] = lengths[i][src] + ~was
            finished[i] = was | (tok == EOS)
            scores[i] = totals[pick]
            rows[i * beam:(i + 1) * beam] = i * beam + src
            tokens[i * beam:(i + 1) * beam] = tok
        state = tuple(x[rows] for x in state)
        if np.all(finished | np.isinf(scores)):
            break
    best_tokens, best_scores, best_lengths = [], [], []
    for i in range(n):
        norm = np.array([-np.inf if np.isneginf(scores[i, k]) else scores[i, k] / max(lengths[i, k], 1.0) ** alpha
                         for k in range(beam)])
        k = int(np.argmax(norm))
        best_tokens.append(seqs[i][k])
        best_scores.append(norm[k])
        best_lengths.append(lengths[i, k])
    L = max(1, int(max(best_lengths)))
    return np.array(best_tokens, dtype=np.int64).reshape(n, -1)[:, :L], np.array(best_scores)
''',
        "corpus_bleu": '''
def corpus_bleu(hypotheses, references, max_n=4):
    total_hyp = sum(map(len, hypotheses))
    total_ref = sum(map(len, references))
    if total_hyp == 0:
        return 0.0
    log_precisions = []
    for n in range(1, max_n + 1):
        matched = possible = 0
        for hyp, ref in zip(hypotheses, references):
            ref_counts = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            hyp_counts = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            matched += sum(min(k, ref_counts[g]) for g, k in hyp_counts.items())
            possible += max(len(hyp) - n + 1, 0)
        if matched == 0:
            return 0.0
        log_precisions.append(np.log(matched / possible))
    penalty = 1.0 if total_hyp > total_ref else np.exp(1.0 - total_ref / total_hyp)
    return float(100.0 * penalty * np.exp(sum(log_precisions) / max_n))
''',
    },
}
