"""Three honest answers to 03_vanishing_gradients, written independently from the released notebook's
instructions (the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "hidden_grad_norms": '''
def hidden_grad_norms(dh, h, Wh):
    N, T, H = dh.shape
    norms = np.zeros(T)
    g = dh[:, T - 1]
    norms[T - 1] = np.linalg.norm(g)
    for t in range(T - 2, -1, -1):
        g = dh[:, t] + np.dot(g * (1 - h[:, t + 1] ** 2), Wh.T)
        norms[t] = np.linalg.norm(g)
    return norms
''',
        "clip_by_global_norm": '''
def clip_by_global_norm(grads, max_norm):
    squares = 0.0
    for g in grads:
        squares += np.sum(g ** 2)
    total_norm = np.sqrt(squares)
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1:
        clipped = [g * scale for g in grads]
    else:
        clipped = [g.copy() for g in grads]
    return clipped, float(total_norm)
''',
        "fitted_rate": '''
def fitted_rate(norms):
    norms = np.array(norms, dtype=float)
    T = len(norms)
    steps_back = T - 1 - np.arange(T)
    slope, intercept = np.polyfit(steps_back, np.log(norms), 1)
    return float(np.exp(slope))
''',
    },
    "s2": {
        "hidden_grad_norms": '''
def hidden_grad_norms(dh, h, Wh):
    T = dh.shape[1]
    out = []
    carry = np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        total = dh[:, t] + carry
        out.append(np.sqrt((total ** 2).sum()))
        carry = np.einsum("nj,ij->ni", total * (1 - np.square(h[:, t])), Wh)
    return np.array(out[::-1], dtype=np.float64)
''',
        "clip_by_global_norm": '''
def clip_by_global_norm(grads, max_norm):
    total_norm = float(np.sqrt(np.sum([np.vdot(g, g) for g in grads])))
    factor = np.minimum(1.0, max_norm / (total_norm + 1e-6))
    return [np.multiply(g, factor) for g in grads], total_norm
''',
        "fitted_rate": '''
def fitted_rate(norms):
    log_norms = np.log(np.asarray(norms, dtype=np.float64))
    k = np.arange(log_norms.size - 1, -1, -1)
    coefficients = np.polyfit(k, log_norms, deg=1)
    return float(np.exp(coefficients[0]))
''',
    },
    "s3": {
        "hidden_grad_norms": '''
def hidden_grad_norms(dh, h, Wh):
    N, T, H = h.shape
    g = np.zeros((N, H))
    norms = np.empty(T, dtype=np.float64)
    for step in range(T):
        t = T - 1 - step
        if t < T - 1:
            # back through the tanh of step t + 1, then through Wh
            g = (g * (1.0 - h[:, t + 1] * h[:, t + 1])) @ Wh.T
        g = g + dh[:, t]
        norms[t] = np.sqrt(np.square(g).sum())
    return norms
''',
        "clip_by_global_norm": '''
def clip_by_global_norm(grads, max_norm):
    flat = np.concatenate([np.ravel(g) for g in grads])
    total_norm = float(np.linalg.norm(flat))
    if total_norm + 1e-6 > max_norm:
        return [g * (max_norm / (total_norm + 1e-6)) for g in grads], total_norm
    return [np.array(g, copy=True) for g in grads], total_norm
''',
        "fitted_rate": '''
def fitted_rate(norms):
    y = np.log(np.asarray(norms, dtype=np.float64))
    k = (len(y) - 1) - np.arange(len(y))
    # least-squares slope by hand
    k_mean, y_mean = k.mean(), y.mean()
    slope = np.sum((k - k_mean) * (y - y_mean)) / np.sum((k - k_mean) ** 2)
    return float(np.exp(slope))
''',
    },
}
