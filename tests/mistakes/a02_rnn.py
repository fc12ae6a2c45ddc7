"""Plausible wrong answers to assignment 02_rnn (the format is documented in tests/test_mistakes.py)."""

_STEP_BACKWARD = '''
def rnn_step_backward(dh, cache):
    x, h_prev, Wx, Wh, h = cache
    da = {da}
    return da @ Wx.T, da @ Wh.T, x.T @ da, {dWh}, {db}
'''

_SAMPLE = '''
def sample_from_scores(scores, temperature, rng):
    scores = np.asarray(scores, dtype=np.float64)
    if temperature == 0:
        return np.argmax(scores, axis=1)
    z = {z}
    p = {p}
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(scores.shape[0])
    return np.minimum((np.cumsum(p, axis=1) <= u[:, None]).sum(axis=1), scores.shape[1] - 1)
'''

_GENERATE = '''
def generate(params, prefix, length, temperature, rng, num_samples=1):
    V, H = params["Wx"].shape
    one_hot = np.eye(V)
    h = np.zeros((num_samples, H))
    for c in {prefix}:
        h, _ = rnn_step_forward(one_hot[np.full(num_samples, c)], h, params["Wx"], params["Wh"], params["b"])
    ids = np.zeros((num_samples, length), dtype=np.int64)
    for i in range(length):
        ids[:, i] = sample_from_scores({scores}, {temperature}, rng)
        h, _ = rnn_step_forward(one_hot[{fed}], h, params["Wx"], params["Wh"], params["b"])
    return {result}
'''

_GEN_OK = {"prefix": "prefix", "scores": 'h @ params["W_out"] + params["b_out"]', "temperature": "temperature",
           "fed": "ids[:, i]", "result": "ids"}

_BPTT = '''
def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx, dWh, db = np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dh_next = {start}
    for t in range(T - 1, -1, -1):
        dx[:, t], dh_next, dWx_t, dWh_t, db_t = rnn_step_backward({upstream}, cache[t])
        dWx {acc} dWx_t
        dWh {acc} dWh_t
        db {acc} db_t
    return dx, {dh0}, dWx, dWh, db
'''

_BPTT_OK = {"start": "np.zeros((N, H))", "upstream": "dh[:, t] + dh_next", "acc": "+=", "dh0": "dh_next"}

MISTAKES = [
    {
        "name": "step_forward_no_bias",
        "cell": "rnn_step_forward",
        "source": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h = np.tanh(x @ Wx + h_prev @ Wh)
    return h, (x, h_prev, Wx, Wh, h)
''',
        "caught_by": "test_rnn_step_forward",
        "visible": True,
        "message": "the bias b is missing",
    },
    {
        "name": "step_forward_Wh_transposed",
        "cell": "rnn_step_forward",
        "source": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h = np.tanh(x @ Wx + h_prev @ Wh.T + b)
    return h, (x, h_prev, Wx, Wh, h)
''',
        "caught_by": "test_rnn_step_forward",
        "visible": True,
        "message": "h_prev is multiplied by Wh.T instead of Wh",
    },
    {
        "name": "step_forward_loop_over_examples",
        "cell": "rnn_step_forward",
        "source": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h = np.zeros((x.shape[0], Wh.shape[0]))
    for n in range(x.shape[0]):
        h[n] = np.tanh(x[n] @ Wx + h_prev[n] @ Wh + b)
    return h, (x, h_prev, Wx, Wh, h)
''',
        "caught_by": "test_rnn_step_forward",
        "visible": True,
        "message": "loop_over_examples has values outside",
    },
    {
        "name": "step_forward_cache_order",
        "cell": "rnn_step_forward",
        "source": '''
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h, (x, Wx, h_prev, Wh, h)
''',
        "caught_by": "test_rnn_step_forward",
        "visible": True,
        "message": "the cache, which must be exactly the tuple (x, h_prev, Wx, Wh, h)",
    },
    {
        "name": "step_backward_no_tanh_derivative",
        "cell": "rnn_step_backward",
        "source": _STEP_BACKWARD.format(da="dh", dWh="h_prev.T @ da", db="da.sum(axis=0)"),
        "caught_by": "test_rnn_step_backward",
        "visible": True,
        "message": "the derivative of the tanh is missing",
    },
    {
        "name": "step_backward_tanh_of_h",
        "cell": "rnn_step_backward",
        "source": _STEP_BACKWARD.format(da="dh * (1 - np.tanh(h) ** 2)", dWh="h_prev.T @ da", db="da.sum(axis=0)"),
        "caught_by": "test_rnn_step_backward",
        "visible": True,
        "message": "as if it were the pre-activation",
    },
    {
        "name": "step_backward_db_mean",
        "cell": "rnn_step_backward",
        "source": _STEP_BACKWARD.format(da="dh * (1 - h * h)", dWh="h_prev.T @ da", db="da.mean(axis=0)"),
        "caught_by": "test_rnn_step_backward",
        "visible": True,
        "message": "did you average instead of sum over the batch?",
    },
    {
        "name": "step_backward_dWh_transposed",
        "cell": "rnn_step_backward",
        "source": _STEP_BACKWARD.format(da="dh * (1 - h * h)", dWh="da.T @ h_prev", db="da.sum(axis=0)"),
        "caught_by": "test_rnn_step_backward",
        "visible": True,
        "message": "dWh is the transpose of the expected matrix",
    },
    {
        "name": "forward_every_step_from_h0",
        "cell": "rnn_forward",
        "source": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    cache = []
    for t in range(T):
        h[:, t], step_cache = rnn_step_forward(x[:, t], h0, Wx, Wh, b)
        cache.append(step_cache)
    return h, cache
''',
        "caught_by": "test_rnn_forward",
        "visible": True,
        "message": "every step starts from h0",
    },
    {
        "name": "forward_stores_previous_state",
        "cell": "rnn_forward",
        "source": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    cache = []
    h_prev = h0
    for t in range(T):
        h[:, t] = h_prev
        h_prev, step_cache = rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)
        cache.append(step_cache)
    return h, cache
''',
        "caught_by": "test_rnn_forward",
        "visible": True,
        "message": "h[:, t] holds the state before step t",
    },
    {
        "name": "forward_loop_over_examples",
        "cell": "rnn_forward",
        "source": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    cache = []
    h_prev = h0
    for t in range(T):
        for n in range(N):
            h[n, t] = np.tanh(x[n, t] @ Wx + h_prev[n] @ Wh + b)
        cache.append((x[:, t], h_prev, Wx, Wh, h[:, t]))
        h_prev = h[:, t]
    return h, cache
''',
        "caught_by": "test_rnn_forward",
        "visible": True,
        "message": "loop_over_examples has values outside",
    },
    {
        "name": "forward_cache_of_arrays",
        "cell": "rnn_forward",
        "source": '''
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    h_prev = h0
    for t in range(T):
        h_prev, _ = rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)
        h[:, t] = h_prev
    return h, (x, h0, Wx, Wh, h)
''',
        "caught_by": "test_rnn_forward",
        "visible": True,
        "message": "the list of the T step caches",
    },
    {
        "name": "backward_last_dh_only",
        "cell": "rnn_backward",
        "source": _BPTT.format(**dict(_BPTT_OK, start="dh[:, -1]", upstream="dh_next")),
        "caught_by": "test_rnn_backward",
        "visible": True,
        "message": "only the last step's dh is used",
    },
    {
        "name": "backward_no_recurrence",
        "cell": "rnn_backward",
        "source": _BPTT.format(**dict(_BPTT_OK, upstream="dh[:, t]")),
        "caught_by": "test_rnn_backward",
        "visible": True,
        "message": "no gradient flows back through h_prev",
    },
    {
        "name": "backward_weights_of_one_step",
        "cell": "rnn_backward",
        "source": _BPTT.format(**dict(_BPTT_OK, acc="=")),
        "caught_by": "test_rnn_backward",
        "visible": True,
        "message": "dWx is the first step's alone",
    },
    {
        "name": "backward_dh0_zero",
        "cell": "rnn_backward",
        "source": _BPTT.format(**dict(_BPTT_OK, dh0="np.zeros((N, H))")),
        "caught_by": "test_rnn_backward",
        "visible": True,
        "message": "dh0 is all zeros",
    },
    {
        "name": "sample_no_max_shift",
        "cell": "sample_from_scores",
        "source": _SAMPLE.format(z="scores / temperature", p="np.exp(z)"),
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "are what np.exp of the unshifted scores gives",
    },
    {
        "name": "sample_ignores_temperature",
        "cell": "sample_from_scores",
        "source": _SAMPLE.format(z="scores", p="np.exp(z - z.max(axis=1, keepdims=True))"),
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "the temperature is ignored",
    },
    {
        "name": "sample_multiplies_by_temperature",
        "cell": "sample_from_scores",
        "source": _SAMPLE.format(z="scores * temperature", p="np.exp(z - z.max(axis=1, keepdims=True))"),
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "the scores are multiplied by the temperature",
    },
    {
        "name": "sample_rng_choice_per_row",
        "cell": "sample_from_scores",
        "source": '''
def sample_from_scores(scores, temperature, rng):
    if temperature == 0:
        return np.argmax(scores, axis=1)
    z = scores / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])
''',
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "loop_over_examples has values outside",
    },
    {
        "name": "sample_greedy_draws_anyway",
        "cell": "sample_from_scores",
        "source": '''
def sample_from_scores(scores, temperature, rng):
    u = rng.random(scores.shape[0])
    if temperature == 0:
        return np.argmax(scores, axis=1)
    z = scores / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.minimum((np.cumsum(p, axis=1) <= u[:, None]).sum(axis=1), scores.shape[1] - 1)
''',
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "at temperature 0 return the argmax before any draw",
    },
    {
        "name": "generate_reads_last_prefix_symbol_only",
        "cell": "generate",
        "source": _GENERATE.format(**dict(_GEN_OK, prefix="prefix[-1:]")),
        "caught_by": "test_generate",
        "visible": True,
        "message": "only the prefix's last symbol is read",
    },
    {
        "name": "generate_no_output_bias",
        "cell": "generate",
        "source": _GENERATE.format(**dict(_GEN_OK, scores='h @ params["W_out"]')),
        "caught_by": "test_generate",
        "visible": True,
        "message": "the output bias b_out is missing",
    },
    {
        "name": "generate_temperature_not_passed",
        "cell": "generate",
        "source": _GENERATE.format(**dict(_GEN_OK, temperature="1.0")),
        "caught_by": "test_generate",
        "visible": True,
        "message": "the temperature is not handed on",
    },
    {
        # a generator of its own at each step: the draws no longer follow the rng the caller seeded
        "name": "generate_new_rng_each_step",
        "cell": "generate",
        "source": _GENERATE.format(**_GEN_OK).replace(
            "{temperature}, rng)".format(**_GEN_OK), "{temperature}, np.random.default_rng(i))".format(**_GEN_OK)),
        "caught_by": "test_generate",
        "visible": True,
        "message": "a generator other than the rng argument",
    },
    {
        "name": "generate_feeds_prefix_again",
        "cell": "generate",
        "source": _GENERATE.format(**dict(_GEN_OK, fed="np.full(num_samples, prefix[-1])")),
        "caught_by": "test_generate",
        "visible": True,
        "message": "the prefix's last symbol is fed at every step",
    },
    {
        "name": "generate_returns_prefix_too",
        "cell": "generate",
        "source": _GENERATE.format(**dict(
            _GEN_OK, result="np.concatenate([np.tile(prefix, (num_samples, 1)), ids], axis=1)")),
        "caught_by": "test_generate",
        "visible": True,
        "message": "has shape (3, 11) where (3, 7) is expected",
    },
    {
        "name": "generate_one_sample_at_a_time",
        "cell": "generate",
        "source": '''
def generate(params, prefix, length, temperature, rng, num_samples=1):
    V, H = params["Wx"].shape
    ids = np.zeros((num_samples, length), dtype=np.int64)
    for n in range(num_samples):
        h = np.zeros((1, H))
        for c in prefix:
            h, _ = rnn_step_forward(np.eye(V)[[c]], h, params["Wx"], params["Wh"], params["b"])
        for i in range(length):
            ids[n, i] = sample_from_scores(h @ params["W_out"] + params["b_out"], temperature, rng)[0]
            h, _ = rnn_step_forward(np.eye(V)[[ids[n, i]]], h, params["Wx"], params["Wh"], params["b"])
    return ids
''',
        "caught_by": "test_generate",
        "visible": True,
        "message": "loop_over_examples has values outside",
    },
    {
        "name": "sample_float_ids",
        "cell": "sample_from_scores",
        "source": _SAMPLE.format(z="scores / temperature", p="np.exp(z - z.max(axis=1, keepdims=True))").replace(
            "return np.minimum(", "return 1.0 * np.minimum("),
        "caught_by": "test_sample_from_scores",
        "visible": True,
        "message": "the ids are not integers",
    },
]

# Right answers that write into their input dh (the instructions forbid modifying x only, in rnn_forward): the
# tests hand every function copies of their inputs, so these score full marks in every mode (assert, record).
RIGHT = [
    {
        "name": "step_backward_in_place_dh",
        "cell": "rnn_step_backward",
        "source": '''
def rnn_step_backward(dh, cache):
    x, h_prev, Wx, Wh, h = cache
    dh *= 1 - h * h  # dh now holds the gradient through the tanh
    return dh @ Wx.T, dh @ Wh.T, x.T @ dh, h_prev.T @ dh, dh.sum(axis=0)
''',
    },
    {
        "name": "bptt_in_place_dh",
        "cell": "rnn_backward",
        "source": '''
def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx, dWh, db = np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    for t in range(T - 1, -1, -1):
        dx[:, t], dh_prev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t], cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
        if t > 0:
            dh[:, t - 1] += dh_prev  # what step t sends back, added to the gradient from outside
    return dx, dh_prev, dWx, dWh, db
''',
    },
]
