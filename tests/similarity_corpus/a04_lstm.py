"""Three honest answers to 04_lstm, written independently from the released notebook's instructions
(the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "lstm_step_forward": '''
def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    H = h_prev.shape[1]
    a = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
    ai, af, ag, ao = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:4 * H]
    i = sigmoid(ai)
    f = sigmoid(af)
    o = sigmoid(ao)
    g = np.tanh(ag)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return h, c, (x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)
''',
        "lstm_step_backward": '''
def lstm_step_backward(dh, dc, cache):
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c = cache
    dct = dc + dh * o * (1 - tanh_c ** 2)
    do = dh * tanh_c
    di = dct * g
    df = dct * c_prev
    dg = dct * i
    dai = di * i * (1 - i)
    daf = df * f * (1 - f)
    dag = dg * (1 - g ** 2)
    dao = do * o * (1 - o)
    da = np.hstack((dai, daf, dag, dao))
    dx = np.dot(da, Wx.T)
    dh_prev = np.dot(da, Wh.T)
    dc_prev = dct * f
    dWx = np.dot(x.T, da)
    dWh = np.dot(h_prev.T, da)
    db = np.sum(da, axis=0)
    return dx, dh_prev, dc_prev, dWx, dWh, db
''',
        "gru_step_forward": '''
def gru_step_forward(x, h_prev, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ Wh + bh, 3, axis=1)
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, (r, z, n)
''',
        "lstm_sequence": '''
def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    caches = []
    h_prev, c_prev = h0, c0
    for t in range(T):
        h_prev, c_prev, cache_t = lstm_step_forward(x[:, t, :], h_prev, c_prev, Wx, Wh, b)
        h[:, t, :] = h_prev
        caches.append(cache_t)
    return h, caches


def lstm_sequence_backward(dh, caches):
    N, T, H = dh.shape
    x0, _, _, Wx, Wh = caches[0][:5]
    dx = np.zeros((N, T, x0.shape[1]))
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    db = np.zeros(Wx.shape[1])
    dh_next = np.zeros((N, H))
    dc_next = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        grads = lstm_step_backward(dh[:, t, :] + dh_next, dc_next, caches[t])
        dx[:, t, :] = grads[0]
        dh_next, dc_next = grads[1], grads[2]
        dWx += grads[3]
        dWh += grads[4]
        db += grads[5]
    return dx, dh_next, dc_next, dWx, dWh, db
''',
        "classifier_loss": '''
def classifier_loss(params, x, y):
    N = x.shape[0]
    H = params["Wh"].shape[0]
    h0 = np.zeros((N, H))
    c0 = np.zeros((N, H))
    h, caches = lstm_sequence_forward(x, h0, c0, params["Wx"], params["Wh"], params["b"])
    h_last = h[:, -1, :]
    scores = np.dot(h_last, params["Wy"]) + params["by"]
    loss, dscores = softmax_loss(scores, y)
    dWy = np.dot(h_last.T, dscores)
    dby = np.sum(dscores, axis=0)
    dh = np.zeros(h.shape)
    dh[:, -1, :] = np.dot(dscores, params["Wy"].T)
    dx, dh0, dc0, dWx, dWh, db = lstm_sequence_backward(dh, caches)
    grads = {"Wx": dWx, "Wh": dWh, "b": db, "Wy": dWy, "by": dby}
    return loss, grads
''',
    },
    "s2": {
        "lstm_step_forward": '''
def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    pre = np.matmul(x, Wx) + np.matmul(h_prev, Wh) + b
    a_i, a_f, a_g, a_o = np.split(pre, 4, axis=1)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)
    g = np.tanh(a_g)
    c = c_prev * f + g * i
    tanh_c = np.tanh(c)
    return o * tanh_c, c, (x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)
''',
        "lstm_step_backward": '''
def lstm_step_backward(dh, dc, cache):
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c = cache
    dcell = dc + dh * o * (1.0 - np.square(tanh_c))
    gate_grads = [dcell * g, dcell * c_prev, dcell * i, dh * tanh_c]
    local = [i * (1.0 - i), f * (1.0 - f), 1.0 - np.square(g), o * (1.0 - o)]
    da = np.concatenate([d * l for d, l in zip(gate_grads, local)], axis=1)
    return (np.matmul(da, Wx.T), np.matmul(da, Wh.T), dcell * f,
            np.matmul(x.T, da), np.matmul(h_prev.T, da), da.sum(0))
''',
        "gru_step_forward": '''
def gru_step_forward(x, h_prev, Wx, Wh, bx, bh):
    H = h_prev.shape[-1]
    gx = np.matmul(x, Wx) + bx
    gh = np.matmul(h_prev, Wh) + bh
    rz = sigmoid(gx[:, :2 * H] + gh[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
    h = n + z * (h_prev - n)
    return h, (gx, gh, r, z, n)
''',
        "lstm_sequence": '''
def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):
    hs, caches = [], []
    h, c = h0, c0
    for t in range(x.shape[1]):
        h, c, step_cache = lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
        caches.append(step_cache)
    return np.stack(hs, axis=1), caches


def lstm_sequence_backward(dh, caches):
    T = dh.shape[1]
    dxs = []
    grad_h = np.zeros_like(dh[:, 0])
    grad_c = np.zeros_like(dh[:, 0])
    sums = None
    for t in range(T - 1, -1, -1):
        dx_t, grad_h, grad_c, *param_grads = lstm_step_backward(dh[:, t] + grad_h, grad_c, caches[t])
        dxs.insert(0, dx_t)
        sums = param_grads if sums is None else [s + p for s, p in zip(sums, param_grads)]
    dWx, dWh, db = sums
    return np.stack(dxs, axis=1), grad_h, grad_c, dWx, dWh, db
''',
        "classifier_loss": '''
def classifier_loss(params, x, y):
    Wx, Wh, b, Wy, by = (params[k] for k in ("Wx", "Wh", "b", "Wy", "by"))
    zeros = np.zeros((x.shape[0], Wh.shape[0]))
    hs, caches = lstm_sequence_forward(x, zeros, zeros.copy(), Wx, Wh, b)
    final = hs[:, -1]
    loss, dscores = softmax_loss(final @ Wy + by, y)
    upstream = np.zeros_like(hs)
    upstream[:, -1] = dscores @ Wy.T
    grads = dict(zip(("Wx", "Wh", "b"), lstm_sequence_backward(upstream, caches)[3:]))
    grads["Wy"] = final.T @ dscores
    grads["by"] = dscores.sum(axis=0)
    return loss, grads
''',
    },
    "s3": {
        "lstm_step_forward": '''
def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    H = c_prev.shape[1]
    gates = x.dot(Wx) + h_prev.dot(Wh) + b
    ifo = sigmoid(np.concatenate([gates[:, :2 * H], gates[:, 3 * H:]], axis=1))
    i, f, o = ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:]
    g = np.tanh(gates[:, 2 * H:3 * H])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    cache = x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c
    return h, c, cache
''',
        "lstm_step_backward": '''
def lstm_step_backward(dh, dc, cache):
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c = cache
    N, H = dh.shape
    dc_sum = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.empty((N, 4 * H))
    da[:, :H] = dc_sum * g * i * (1 - i)
    da[:, H:2 * H] = dc_sum * c_prev * f * (1 - f)
    da[:, 2 * H:3 * H] = dc_sum * i * (1 - g * g)
    da[:, 3 * H:] = dh * tanh_c * o * (1 - o)
    db = da.sum(axis=0)
    dWh = h_prev.T.dot(da)
    dWx = x.T.dot(da)
    dh_prev = da.dot(Wh.T)
    dx = da.dot(Wx.T)
    return dx, dh_prev, dc_sum * f, dWx, dWh, db
''',
        "gru_step_forward": '''
def gru_step_forward(x, h_prev, Wx, Wh, bx, bh):
    H = h_prev.shape[1]
    Wxr, Wxz, Wxn = Wx[:, :H], Wx[:, H:2 * H], Wx[:, 2 * H:]
    Whr, Whz, Whn = Wh[:, :H], Wh[:, H:2 * H], Wh[:, 2 * H:]
    r = sigmoid(x @ Wxr + bx[:H] + h_prev @ Whr + bh[:H])
    z = sigmoid(x @ Wxz + bx[H:2 * H] + h_prev @ Whz + bh[H:2 * H])
    n = np.tanh(x @ Wxn + bx[2 * H:] + r * (h_prev @ Whn + bh[2 * H:]))
    h = (1 - z) * n + z * h_prev
    return h, None
''',
        "lstm_sequence": '''
def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):
    N, T, D = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    caches = [None] * T
    state = (h0, c0)
    for t in range(T):
        ht, ct, caches[t] = lstm_step_forward(x[:, t, :], state[0], state[1], Wx, Wh, b)
        h[:, t, :] = ht
        state = (ht, ct)
    return h, caches


def lstm_sequence_backward(dh, caches):
    N, T, H = dh.shape
    dx = np.zeros((N, T, caches[0][0].shape[1]))
    dWx, dWh = np.zeros_like(caches[0][3]), np.zeros_like(caches[0][4])
    db = np.zeros(caches[0][3].shape[1])
    dh_prev, dc_prev = np.zeros((N, H)), np.zeros((N, H))
    t = T - 1
    while t >= 0:
        step = lstm_step_backward(dh[:, t, :] + dh_prev, dc_prev, caches[t])
        dx[:, t, :], dh_prev, dc_prev = step[0], step[1], step[2]
        dWx += step[3]
        dWh += step[4]
        db += step[5]
        t -= 1
    return dx, dh_prev, dc_prev, dWx, dWh, db
''',
        "classifier_loss": '''
def classifier_loss(params, x, y):
    N, T, K = x.shape
    H = params["Wh"].shape[0]
    h, caches = lstm_sequence_forward(x, np.zeros((N, H)), np.zeros((N, H)), params["Wx"], params["Wh"],
                                      params["b"])
    scores = h[:, T - 1].dot(params["Wy"]) + params["by"]
    loss, ds = softmax_loss(scores, y)
    dh = np.zeros((N, T, H))
    dh[:, T - 1] = ds.dot(params["Wy"].T)  # only the last state reaches the scores
    grads = {}
    _, _, _, grads["Wx"], grads["Wh"], grads["b"] = lstm_sequence_backward(dh, caches)
    grads["Wy"] = h[:, T - 1].T.dot(ds)
    grads["by"] = ds.sum(0)
    return loss, grads
''',
    },
}
