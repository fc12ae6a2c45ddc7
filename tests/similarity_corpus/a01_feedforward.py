"""Three honest answers to 01_feedforward, written independently from the released notebook's instructions
(the format is in tests/similarity_corpus/__init__.py)."""

HONEST = {
    "s1": {
        "affine_forward": '''
def affine_forward(x, W, b):
    out = np.dot(x, W) + b
    cache = (x, W)
    return out, cache
''',
        "affine_backward": '''
def affine_backward(dout, cache):
    x, W = cache
    dx = np.dot(dout, W.T)
    dW = np.dot(x.T, dout)
    db = np.sum(dout, axis=0)
    return dx, dW, db
''',
        "softmax_loss": '''
def softmax_loss(s, y):
    n = s.shape[0]
    m = np.max(s, axis=1, keepdims=True)
    z = s - m
    logsumexp = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    logp = z - logsumexp
    loss = -np.sum(logp[np.arange(n), y]) / n
    probs = np.exp(logp)
    onehot = np.zeros_like(s)
    onehot[np.arange(n), y] = 1
    ds = (probs - onehot) / n
    return float(loss), ds
''',
        "numerical_gradient": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        plus = np.array(f(), dtype=np.float64)
        x[idx] = saved - h
        minus = np.array(f(), dtype=np.float64)
        x[idx] = saved
        if dout is not None:
            grad[idx] = np.sum((plus - minus) * dout) / (2 * h)
        else:
            grad[idx] = np.sum(plus - minus) / (2 * h)
    return grad
''',
        "two_layer_loss": '''
def two_layer_loss(params, x, y):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z1, c1 = affine_forward(x, W1, b1)
    a1 = np.tanh(z1)
    scores, c2 = affine_forward(a1, W2, b2)
    loss, dscores = softmax_loss(scores, y)
    da1, dW2, db2 = affine_backward(dscores, c2)
    dz1 = da1 * (1 - a1 * a1)
    dx, dW1, db1 = affine_backward(dz1, c1)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
''',
    },
    "s2": {
        "affine_forward": '''
def affine_forward(x, W, b):
    cache = (x, W)
    return np.matmul(x, W) + b.reshape(1, -1), cache
''',
        "affine_backward": '''
def affine_backward(dout, cache):
    inputs, weights = cache
    grad_inputs = np.einsum("nm,dm->nd", dout, weights)
    grad_weights = np.einsum("nd,nm->dm", inputs, dout)
    grad_bias = dout.sum(0)
    return grad_inputs, grad_weights, grad_bias
''',
        "softmax_loss": '''
def softmax_loss(s, y):
    num = len(y)
    stable = s - s.max(1)[:, None]
    exps = np.exp(stable)
    sums = exps.sum(1)
    probs = exps / sums[:, None]
    # log-probability of the right class, without dividing first
    correct = stable[np.arange(num), y] - np.log(sums)
    loss = -correct.mean()
    ds = probs - np.eye(s.shape[1])[y]
    ds = ds / num
    return float(loss), ds
''',
        "numerical_gradient": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x, dtype=np.float64)
    weights = 1.0 if dout is None else dout
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        ix = it.multi_index
        original = x[ix]
        x[ix] = original + h
        f_plus = np.asarray(f(), dtype=np.float64)
        x[ix] = original - h
        f_minus = np.asarray(f(), dtype=np.float64)
        x[ix] = original
        grad[ix] = np.sum((f_plus - f_minus) * weights) / (2.0 * h)
        it.iternext()
    return grad
''',
        "two_layer_loss": '''
def two_layer_loss(params, x, y):
    hidden_pre, cache_1 = affine_forward(x, params["W1"], params["b1"])
    hidden = np.tanh(hidden_pre)
    out, cache_2 = affine_forward(hidden, params["W2"], params["b2"])
    loss, grad_out = softmax_loss(out, y)
    grads = {}
    grad_hidden, grads["W2"], grads["b2"] = affine_backward(grad_out, cache_2)
    grad_pre = grad_hidden * (1.0 - np.square(hidden))
    _, grads["W1"], grads["b1"] = affine_backward(grad_pre, cache_1)
    return loss, grads
''',
    },
    "s3": {
        "affine_forward": '''
def affine_forward(x, W, b):
    return x.dot(W) + b, (x, W)
''',
        "affine_backward": '''
def affine_backward(dout, cache):
    x, W = cache
    return dout.dot(W.T), x.T.dot(dout), dout.sum(axis=0)
''',
        "softmax_loss": '''
def softmax_loss(s, y):
    N = len(s)
    rows = np.arange(N)
    logits = s - np.amax(s, axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1))[:, np.newaxis]
    loss = -log_softmax[rows, y].sum() / N
    grad = np.exp(log_softmax)
    grad[rows, y] -= 1.0
    return float(loss), grad / N
''',
        "numerical_gradient": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    def total():
        out = np.asarray(f(), dtype=float)
        return out if dout is None else out * dout

    grad = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        keep = x[index]
        x[index] = keep + h
        up = total()
        x[index] = keep - h
        down = total()
        x[index] = keep  # put it back exactly
        grad[index] = (up - down).sum() / (2 * h)
    return grad
''',
        "two_layer_loss": '''
def two_layer_loss(params, x, y):
    pre, first = affine_forward(x, params["W1"], params["b1"])
    act = np.tanh(pre)
    scores, second = affine_forward(act, params["W2"], params["b2"])
    loss, d_scores = softmax_loss(scores, y)
    d_act, d_W2, d_b2 = affine_backward(d_scores, second)
    d_W1, d_b1 = affine_backward(d_act * (1 - act ** 2), first)[1:]
    return loss, dict(W1=d_W1, b1=d_b1, W2=d_W2, b2=d_b2)
''',
    },
}
