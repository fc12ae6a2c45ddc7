"""Plausible wrong answers to assignment 01_feedforward (the format is documented in tests/test_mistakes.py)."""

MISTAKES = [
    {
        "name": "affine_forward_no_bias",
        "cell": "affine_forward",
        "source": '''
def affine_forward(x, W, b):
    out = x @ W
    cache = (x, W)
    return out, cache
''',
        "caught_by": "test_affine_forward",
        "visible": True,
        "message": "the bias b is missing",
    },
    {
        "name": "affine_forward_bias_on_rows",
        "cell": "affine_forward",
        "source": '''
def affine_forward(x, W, b):
    out = x @ W + b.reshape(-1, 1)
    cache = (x, W)
    return out, cache
''',
        "caught_by": "test_affine_forward",
        "visible": True,
        "message": "the bias is added along the wrong axis",
    },
    {
        "name": "affine_forward_loop_over_examples",
        "cell": "affine_forward",
        "source": '''
def affine_forward(x, W, b):
    out = np.array([x[n] @ W + b for n in range(x.shape[0])])
    cache = (x, W)
    return out, cache
''',
        "caught_by": "test_affine_forward",
        "visible": True,
        "message": "loop_over_examples has values outside",
    },
    {
        "name": "affine_forward_cache_with_bias",
        "cell": "affine_forward",
        "source": '''
def affine_forward(x, W, b):
    out = x @ W + b
    cache = (x, W, b)
    return out, cache
''',
        "caught_by": "test_affine_forward",
        "visible": True,
        "message": "cache should be a sequence of 2 values",
    },
    {
        "name": "affine_backward_db_mean",
        "cell": "affine_backward",
        "source": '''
def affine_backward(dout, cache):
    x, W = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.mean(axis=0)
    return dx, dW, db
''',
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "did you average instead of sum over the batch?",
    },
    {
        "name": "affine_backward_dW_transposed",
        "cell": "affine_backward",
        "source": '''
def affine_backward(dout, cache):
    x, W = cache
    dx = dout @ W.T
    dW = dout.T @ x
    db = dout.sum(axis=0)
    return dx, dW, db
''',
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "transposed?",
    },
    {
        "name": "affine_backward_db_wrong_axis",
        "cell": "affine_backward",
        "source": '''
def affine_backward(dout, cache):
    x, W = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=1)
    return dx, dW, db
''',
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "db has shape (4,) where (5,) is expected",
    },
    {
        # W read from the notebook's globals: right in the visible test, where the global W is the test's W
        "name": "affine_backward_global_W",
        "cell": "affine_backward",
        "source": '''
def affine_backward(dout, cache):
    x, _ = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db
''',
        "caught_by": "test_affine_backward",
        "visible": False,
        "message": "with x and W taken from the cache",
    },
    {
        "name": "softmax_no_max_shift",
        "cell": "softmax_loss",
        "source": '''
def softmax_loss(s, y):
    N = s.shape[0]
    probs = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(N), y]).mean()
    ds = probs.copy()
    ds[np.arange(N), y] -= 1
    return float(loss), ds / N
''',
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "contains nan or inf",
    },
    {
        "name": "softmax_global_max_shift",
        "cell": "softmax_loss",
        "source": '''
def softmax_loss(s, y):
    N = s.shape[0]
    shifted = s - s.max()
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    ds = np.exp(log_probs)
    ds[np.arange(N), y] -= 1
    return float(loss), ds / N
''',
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "is each row shifted by its own maximum?",
    },
    {
        "name": "softmax_sum_not_mean",
        "cell": "softmax_loss",
        "source": '''
def softmax_loss(s, y):
    N = s.shape[0]
    shifted = s - s.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].sum()
    ds = np.exp(log_probs)
    ds[np.arange(N), y] -= 1
    return float(loss), ds
''',
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "average over the batch, do not sum",
    },
    {
        "name": "softmax_ds_not_over_N",
        "cell": "softmax_loss",
        "source": '''
def softmax_loss(s, y):
    N = s.shape[0]
    shifted = s - s.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    ds = np.exp(log_probs)
    ds[np.arange(N), y] -= 1
    return float(loss), ds
''',
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "ds is N times too large",
    },
    {
        "name": "softmax_ds_no_minus_one",
        "cell": "softmax_loss",
        "source": '''
def softmax_loss(s, y):
    N = s.shape[0]
    shifted = s - s.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    return float(loss), np.exp(log_probs) / N
''',
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "subtract 1 at each row's true class",
    },
    {
        "name": "numgrad_ignores_dout",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = np.sum(fp - fm) / (2 * h)
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "dout is ignored",
    },
    {
        "name": "numgrad_one_sided",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        f0 = np.array(f(), dtype=float)
        x[i] = old + h
        fp = np.array(f(), dtype=float)
        x[i] = old
        diff = fp - f0 if dout is None else (fp - f0) * dout
        grad[i] = np.sum(diff) / h
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "one-sided difference",
    },
    {
        "name": "numgrad_divides_by_h",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = np.array(f(), dtype=float)
        x[i] = old - h
        fm = np.array(f(), dtype=float)
        x[i] = old
        diff = fp - fm if dout is None else (fp - fm) * dout
        grad[i] = np.sum(diff) / h
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "divides by 2h",
    },
    {
        "name": "numgrad_not_restored",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        x[i] += h
        fp = np.array(f(), dtype=float)
        x[i] -= 2 * h
        fm = np.array(f(), dtype=float)
        diff = fp - fm if dout is None else (fp - fm) * dout
        grad[i] = np.sum(diff) / (2 * h)
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "x is changed by the call",
    },
    {
        "name": "numgrad_perturbs_a_copy",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    xc = x.copy()
    it = np.nditer(xc, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = xc[i]
        xc[i] = old + h
        fp = np.array(f(), dtype=float)
        xc[i] = old - h
        fm = np.array(f(), dtype=float)
        xc[i] = old
        diff = fp - fm if dout is None else (fp - fm) * dout
        grad[i] = np.sum(diff) / (2 * h)
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "perturb x itself",
    },
    {
        # a double loop over rows and columns: right for the visible tests' matrices, wrong in 1-D and 3-D
        "name": "numgrad_two_dimensional_only",
        "cell": "numerical_gradient",
        "source": '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    x2, g2 = np.atleast_2d(x), np.atleast_2d(grad)
    for i in range(x2.shape[0]):
        for j in range(x2.shape[1]):
            old = x2[i, j].copy()
            x2[i, j] = old + h
            fp = np.array(f(), dtype=float)
            x2[i, j] = old - h
            fm = np.array(f(), dtype=float)
            x2[i, j] = old
            diff = fp - fm if dout is None else (fp - fm) * dout
            g2[i, j] = np.sum(diff) / (2 * h)
    return grad
''',
        "caught_by": "test_numerical_gradient",
        "visible": False,
        "message": "for a 3-D x",
    },
    {
        "name": "two_layer_tanh_derivative_at_input",
        "cell": "two_layer_loss",
        "source": '''
def two_layer_loss(params, x, y):
    a, cache1 = affine_forward(x, params["W1"], params["b1"])
    h = np.tanh(a)
    s, cache2 = affine_forward(h, params["W2"], params["b2"])
    loss, ds = softmax_loss(s, y)
    dh, dW2, db2 = affine_backward(ds, cache2)
    da = dh * (1 - a**2)
    _, dW1, db1 = affine_backward(da, cache1)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
''',
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "dL/dW1 (through the tanh",
    },
    {
        "name": "two_layer_keys_with_d",
        "cell": "two_layer_loss",
        "source": '''
def two_layer_loss(params, x, y):
    a, cache1 = affine_forward(x, params["W1"], params["b1"])
    h = np.tanh(a)
    s, cache2 = affine_forward(h, params["W2"], params["b2"])
    loss, ds = softmax_loss(s, y)
    dh, dW2, db2 = affine_backward(ds, cache2)
    _, dW1, db1 = affine_backward(dh * (1 - h**2), cache1)
    return loss, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
''',
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "without a d in front",
    },
    {
        "name": "two_layer_dW2_from_preactivation",
        "cell": "two_layer_loss",
        "source": '''
def two_layer_loss(params, x, y):
    a, cache1 = affine_forward(x, params["W1"], params["b1"])
    h = np.tanh(a)
    s, cache2 = affine_forward(h, params["W2"], params["b2"])
    loss, ds = softmax_loss(s, y)
    dh, _, db2 = affine_backward(ds, cache2)
    dW2 = a.T @ ds
    _, dW1, db1 = affine_backward(dh * (1 - h**2), cache1)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
''',
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "dL/dW2 (from the output layer)",
    },
]
