"""Three honest answers to 02_rnn, written independently from the released notebook's instructions
(the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "rnn_step_forward": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    a = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
    h = np.tanh(a)
    cache = (x, h_prev, Wx, Wh, h)
    return h, cache
''',
        "rnn_step_backward": '''
def rnn_step_backward(dh, cache):
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1 - h ** 2)
    dx = np.dot(da, Wx.T)
    dh_prev = np.dot(da, Wh.T)
    dWx = np.dot(x.T, da)
    dWh = np.dot(h_prev.T, da)
    db = np.sum(da, axis=0)
    return dx, dh_prev, dWx, dWh, db
''',
        "rnn_forward": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = Wh.shape[0]
    h = np.zeros((N, T, H))
    cache = []
    prev = h0
    for t in range(T):
        nxt, c = rnn_step_forward(x[:, t, :], prev, Wx, Wh, b)
        h[:, t, :] = nxt
        cache.append(c)
        prev = nxt
    return h, cache
''',
        "rnn_backward": '''
def rnn_backward(dh, cache):
    N, T, H = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    D = x0.shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    db = np.zeros(H)
    carry = np.zeros((N, H))
    for t in reversed(range(T)):
        g = dh[:, t, :] + carry
        dx_t, carry, dWx_t, dWh_t, db_t = rnn_step_backward(g, cache[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, carry, dWx, dWh, db
''',
        "sample_from_scores": '''
def sample_from_scores(scores, temperature, rng):
    scores = np.asarray(scores, dtype=float)
    if temperature == 0:
        return scores.argmax(axis=1)
    logits = scores / temperature
    logits = logits - np.max(logits, axis=1, keepdims=True)
    probs = np.exp(logits)
    probs = probs / probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(scores.shape[0])
    above = cdf > u[:, None]
    ids = np.argmax(above, axis=1)
    ids[~above.any(axis=1)] = scores.shape[1] - 1
    return ids
''',
        "generate": '''
def generate(params, prefix, length, temperature, rng, num_samples=1):
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    V = Wx.shape[0]
    H = Wh.shape[0]
    h = np.zeros((num_samples, H))
    for symbol in prefix:
        x = np.zeros((num_samples, V))
        x[:, symbol] = 1.0
        h, _ = rnn_step_forward(x, h, Wx, Wh, b)
    out = np.zeros((num_samples, length), dtype=int)
    for t in range(length):
        scores = h @ params["W_out"] + params["b_out"]
        nxt = sample_from_scores(scores, temperature, rng)
        out[:, t] = nxt
        x = np.zeros((num_samples, V))
        x[np.arange(num_samples), nxt] = 1.0
        h, _ = rnn_step_forward(x, h, Wx, Wh, b)
    return out
''',
    },
    "s2": {
        "rnn_step_forward": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    pre = np.matmul(x, Wx) + np.matmul(h_prev, Wh) + b[None, :]
    nxt = np.tanh(pre)
    return nxt, (x, h_prev, Wx, Wh, nxt)
''',
        "rnn_step_backward": '''
def rnn_step_backward(dh, cache):
    inputs, prev, Wx, Wh, out = cache
    dpre = (1.0 - np.square(out)) * dh  # tanh'
    return (np.einsum("nh,dh->nd", dpre, Wx), np.einsum("nh,kh->nk", dpre, Wh),
            np.einsum("nd,nh->dh", inputs, dpre), np.einsum("nk,nh->kh", prev, dpre), dpre.sum(0))
''',
        "rnn_forward": '''
def rnn_forward(x, h0, Wx, Wh, b):
    states = []
    cache = []
    state = h0
    for t in range(x.shape[1]):
        state, step = rnn_step_forward(x[:, t], state, Wx, Wh, b)
        states.append(state)
        cache.append(step)
    h = np.stack(states, axis=1)
    return h, cache
''',
        "rnn_backward": '''
def rnn_backward(dh, cache):
    T = len(cache)
    grads_x = [None] * T
    dWx = dWh = db = 0.0
    dnext = np.zeros_like(dh[:, 0])
    for t in range(T - 1, -1, -1):
        grads_x[t], dnext, gWx, gWh, gb = rnn_step_backward(dh[:, t] + dnext, cache[t])
        dWx = dWx + gWx
        dWh = dWh + gWh
        db = db + gb
    return np.stack(grads_x, axis=1), dnext, dWx, dWh, db
''',
        "sample_from_scores": '''
def sample_from_scores(scores, temperature, rng):
    scores = np.array(scores, dtype=np.float64)
    N, V = scores.shape
    if temperature == 0:
        return np.argmax(scores, axis=-1)
    scaled = scores / temperature
    weights = np.exp(scaled - scaled.max(axis=-1)[:, None])
    cumulative = np.cumsum(weights / weights.sum(axis=-1)[:, None], axis=-1)
    draws = rng.random(N)
    below = (cumulative <= draws[:, None]).sum(axis=-1)
    return np.clip(below, 0, V - 1)
''',
        "generate": '''
def generate(params, prefix, length, temperature, rng, num_samples=1):
    eye = np.eye(params["Wx"].shape[0])
    state = np.zeros((num_samples, params["Wh"].shape[0]))
    step = lambda ids, h: rnn_step_forward(eye[ids], h, params["Wx"], params["Wh"], params["b"])[0]
    for c in prefix:
        state = step(np.repeat(c, num_samples), state)
    generated = []
    for _ in range(length):
        nxt = sample_from_scores(state @ params["W_out"] + params["b_out"], temperature, rng)
        generated.append(nxt)
        state = step(nxt, state)
    return np.array(generated, dtype=np.int64).T.reshape(num_samples, length)
''',
    },
    "s3": {
        "rnn_step_forward": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h = np.tanh(x.dot(Wx) + h_prev.dot(Wh) + b)
    return h, (x, h_prev, Wx, Wh, h)
''',
        "rnn_step_backward": '''
def rnn_step_backward(dh, cache):
    x, h_prev, Wx, Wh, h = cache
    dtanh = dh * (1 - h * h)
    db = dtanh.sum(axis=0)
    dWh = h_prev.T.dot(dtanh)
    dWx = x.T.dot(dtanh)
    dh_prev = dtanh.dot(Wh.T)
    dx = dtanh.dot(Wx.T)
    return dx, dh_prev, dWx, dWh, db
''',
        "rnn_forward": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    h = np.empty((N, T, h0.shape[1]))
    caches = []
    for t in range(T):
        prev = h0 if t == 0 else h[:, t - 1]
        h[:, t], c = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        caches.append(c)
    return h, caches
''',
        "rnn_backward": '''
def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][2].shape[0]
    dx = np.zeros((N, T, D))
    dh0 = np.zeros((N, H))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    for t in range(T)[::-1]:
        step_grads = rnn_step_backward(dh[:, t] + dh0, cache[t])
        dx[:, t] = step_grads[0]
        dh0 = step_grads[1]  # flows into step t - 1
        dWx += step_grads[2]
        dWh += step_grads[3]
        db += step_grads[4]
    return dx, dh0, dWx, dWh, db
''',
        "sample_from_scores": '''
def sample_from_scores(scores, temperature, rng):
    s = np.asarray(scores, dtype=np.float64)
    if temperature == 0:
        return s.argmax(1)
    z = s / temperature
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    u = rng.random(len(s))
    hit = np.cumsum(p, 1) > u[:, None]
    return np.where(hit.any(1), hit.argmax(1), s.shape[1] - 1)
''',
        "generate": '''
def generate(params, prefix, length, temperature, rng, num_samples=1):
    Wx, Wh, b, W_out, b_out = (params[k] for k in ("Wx", "Wh", "b", "W_out", "b_out"))
    vocab = Wx.shape[0]
    h = np.zeros((num_samples, Wh.shape[0]))

    def feed(ids, h):
        onehot = np.zeros((num_samples, vocab))
        onehot[np.arange(num_samples), ids] = 1
        return rnn_step_forward(onehot, h, Wx, Wh, b)[0]

    for symbol in prefix:
        h = feed(symbol, h)
    result = np.empty((num_samples, length), dtype=np.int64)
    for j in range(length):
        result[:, j] = sample_from_scores(h @ W_out + b_out, temperature, rng)
        h = feed(result[:, j], h)
    return result
''',
    },
}
