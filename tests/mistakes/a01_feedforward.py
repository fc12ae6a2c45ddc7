"""Plausible wrong answers to assignment 01_feedforward (the format is documented in tests/test_mistakes.py)."""

_AFFINE_BACKWARD = '''
def affine_backward(dout, cache):
    x, {W} = cache
    dx = dout @ W.T
    dW = {dW}
    db = {db}
    return dx, dW, db
'''
_AB_OK = {"W": "W", "dW": "x.T @ dout", "db": "dout.sum(axis=0)"}

_SOFTMAX = '''
def softmax_loss(s, y):
    N = s.shape[0]
    shifted = {shifted}
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].{reduce}()
    ds = np.exp(log_probs)
    {minus_one}
    return float(loss), ds{over_n}
'''
_SM_OK = {"shifted": "s - s.max(axis=1, keepdims=True)", "reduce": "mean", "minus_one": "ds[np.arange(N), y] -= 1",
          "over_n": " / N"}

_NUMGRAD = '''
def numerical_gradient(f, x, dout=None, h=1e-5):
    grad = np.zeros_like(x)
    {xp} = {copy}
    it = np.nditer({xp}, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = {xp}[i]
        {xp}[i] = old + h
        fp = np.array(f(), dtype=float)
        {xp}[i] = {minus}
        fm = np.array(f(), dtype=float)
        {restore}
        diff = {diff}
        grad[i] = np.sum(diff) / {denominator}
    return grad
'''
_NG_OK = {"xp": "xv", "copy": "x", "minus": "old - h", "restore": "xv[i] = old",
          "diff": "fp - fm if dout is None else (fp - fm) * dout", "denominator": "(2 * h)"}

_TWO_LAYER = '''
def two_layer_loss(params, x, y):
    a, cache1 = affine_forward(x, params["W1"], params["b1"])
    h = np.tanh(a)
    s, cache2 = affine_forward(h, params["W2"], params["b2"])
    loss, ds = softmax_loss(s, y)
    dh, dW2, db2 = affine_backward(ds, cache2)
    dW2 = {dW2}
    _, dW1, db1 = affine_backward(dh * (1 - {tanh_of}**2), cache1)
    return loss, {{"{d}W1": dW1, "{d}b1": db1, "{d}W2": dW2, "{d}b2": db2}}
'''
_TL_OK = {"dW2": "dW2", "tanh_of": "h", "d": ""}

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
        "source": _AFFINE_BACKWARD.format(**dict(_AB_OK, db="dout.mean(axis=0)")),
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "did you average instead of sum over the batch?",
    },
    {
        "name": "affine_backward_dW_transposed",
        "cell": "affine_backward",
        "source": _AFFINE_BACKWARD.format(**dict(_AB_OK, dW="dout.T @ x")),
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "transposed?",
    },
    {
        "name": "affine_backward_db_wrong_axis",
        "cell": "affine_backward",
        "source": _AFFINE_BACKWARD.format(**dict(_AB_OK, db="dout.sum(axis=1)")),
        "caught_by": "test_affine_backward",
        "visible": True,
        "message": "db has shape (4,) where (5,) is expected",
    },
    {
        # W read from the notebook's globals: right in the visible test, where the global W is the test's W
        "name": "affine_backward_global_W",
        "cell": "affine_backward",
        "source": _AFFINE_BACKWARD.format(**dict(_AB_OK, W="_")),
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
        "source": _SOFTMAX.format(**dict(_SM_OK, shifted="s - s.max()")),
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "is each row shifted by its own maximum?",
    },
    {
        "name": "softmax_sum_not_mean",
        "cell": "softmax_loss",
        "source": _SOFTMAX.format(**dict(_SM_OK, reduce="sum", over_n="")),
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "average over the batch, do not sum",
    },
    {
        "name": "softmax_ds_not_over_N",
        "cell": "softmax_loss",
        "source": _SOFTMAX.format(**dict(_SM_OK, over_n="")),
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "ds is N times too large",
    },
    {
        "name": "softmax_ds_no_minus_one",
        "cell": "softmax_loss",
        "source": _SOFTMAX.format(**dict(_SM_OK, minus_one="pass")),
        "caught_by": "test_softmax_loss",
        "visible": True,
        "message": "subtract 1 at each row's true class",
    },
    {
        "name": "numgrad_ignores_dout",
        "cell": "numerical_gradient",
        "source": _NUMGRAD.format(**dict(_NG_OK, diff="fp - fm")),
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
        "source": _NUMGRAD.format(**dict(_NG_OK, denominator="h")),
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "divides by 2h",
    },
    {
        "name": "numgrad_not_restored",
        "cell": "numerical_gradient",
        "source": _NUMGRAD.format(**dict(_NG_OK, minus="xv[i] - 2 * h", restore="pass")),
        "caught_by": "test_numerical_gradient",
        "visible": True,
        "message": "x is changed by the call",
    },
    {
        "name": "numgrad_perturbs_a_copy",
        "cell": "numerical_gradient",
        "source": _NUMGRAD.format(**dict(_NG_OK, copy="x.copy()")),
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
        "message": "a loop over two axes perturbs a whole slice",
    },
    {
        "name": "two_layer_tanh_derivative_at_input",
        "cell": "two_layer_loss",
        "source": _TWO_LAYER.format(**dict(_TL_OK, tanh_of="a")),
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "the tanh's derivative is 1 - h**2, with h = tanh(a) its output",
    },
    {
        "name": "two_layer_keys_with_d",
        "cell": "two_layer_loss",
        "source": _TWO_LAYER.format(**dict(_TL_OK, d="d")),
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "without a d in front",
    },
    {
        "name": "two_layer_dW2_from_preactivation",
        "cell": "two_layer_loss",
        "source": _TWO_LAYER.format(**dict(_TL_OK, dW2="a.T @ ds")),
        "caught_by": "test_two_layer_loss",
        "visible": True,
        "message": "from the pre-activation a: the output layer's input is h = tanh(a)",
    },
]
