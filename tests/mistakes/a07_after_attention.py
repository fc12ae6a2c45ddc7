"""Plausible wrong answers to assignment 07_after_attention (the format is documented in tests/test_mistakes.py)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_variants", Path(__file__).with_name("_variants.py"))
_variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_variants)
_mistake = _variants.mistake_maker("07_after_attention")
_FORWARD, _BACKWARD, _SCAN = "test_attention_forward", "test_attention_backward", "test_scan_forward"
_CAUSAL = "np.arange(S)[None, :] <= np.arange(T)[:, None]"

MISTAKES = [
    # --- attention forward, each one change to the solution
    _mistake("attention_no_scale", "attention_forward",
             [("q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[2])", "q @ np.swapaxes(k, 1, 2)")], _FORWARD,
             "scores not divided by sqrt(d)"),
    _mistake("attention_mask_on_the_wrong_side", "attention_forward",
             [(_CAUSAL, "np.arange(S)[None, :] >= np.arange(T)[:, None]")], _FORWARD,
             "a mask on the wrong side"),
    _mistake("attention_mask_hides_own_key", "attention_forward",
             [(_CAUSAL, "np.arange(S)[None, :] < np.arange(T)[:, None]")], _FORWARD,
             "hiding query t's own key"),
    _mistake("attention_softmax_over_queries", "attention_forward",
             [("A = np.exp(scores - scores.max(axis=2, keepdims=True))",
               "A = np.exp(scores - scores.max(axis=1, keepdims=True))"),
              ("A /= A.sum(axis=2, keepdims=True)", "A /= A.sum(axis=1, keepdims=True)")], _FORWARD,
             "a softmax over the queries"),
    _mistake("attention_no_max_shift", "attention_forward",
             [("A = np.exp(scores - scores.max(axis=2, keepdims=True))", "A = np.exp(scores)")], _FORWARD,
             "subtract each row's maximum before exp", visible=False),
    {
        "name": "attention_mask_after_softmax",
        "cell": "attention_forward",
        "source": '''
def attention_forward(q, k, v, causal):
    scores = q @ np.swapaxes(k, 1, 2) / np.sqrt(q.shape[2])
    A = np.exp(scores - scores.max(axis=2, keepdims=True))
    A /= A.sum(axis=2, keepdims=True)
    if causal:
        A = A * np.tril(np.ones(A.shape[1:]))
    return A @ v, (q, k, v, A)
''',
        "caught_by": _FORWARD,
        "visible": True,
        "message": "a mask applied after the softmax",
    },
    # --- attention backward
    _mistake("backward_dv_from_A_not_transposed", "attention_backward",
             [("dv = np.swapaxes(A, 1, 2) @ dout", "dv = A @ dout")], _BACKWARD, "dv = A dout"),
    _mistake("backward_no_softmax_coupling", "attention_backward",
             [("dP = A * (dA - np.sum(A * dA, axis=2, keepdims=True))", "dP = A * dA")], _BACKWARD,
             "leaving out the softmax's coupling"),
    _mistake("backward_no_scale", "attention_backward",
             [("scale = 1.0 / np.sqrt(q.shape[2])", "scale = 1.0")], _BACKWARD,
             "is missing the factor 1/sqrt(d) of the scores"),
    _mistake("backward_dk_not_transposed", "attention_backward",
             [("dk = np.swapaxes(dP, 1, 2) @ q * scale", "dk = dP @ q * scale")], _BACKWARD,
             "the keys get the transpose"),
    # --- the scan
    _mistake("scan_coefficients_not_composed", "scan_forward",
             [("        A[:, offset:] = A[:, offset:] * A[:, :-offset]\n", "")], _SCAN,
             "rounds that never compose the coefficients"),
    _mistake("scan_coefficients_updated_first", "scan_forward",
             [("        B[:, offset:] = A[:, offset:] * B[:, :-offset] + B[:, offset:]\n"
               "        A[:, offset:] = A[:, offset:] * A[:, :-offset]\n",
               "        A[:, offset:] = A[:, offset:] * A[:, :-offset]\n"
               "        B[:, offset:] = A[:, offset:] * B[:, :-offset] + B[:, offset:]\n")], _SCAN,
             "composing A before B in the same round"),
    _mistake("scan_one_round_short", "scan_forward", [("while offset < T:", "while 2 * offset < T:")], _SCAN,
             "is one round short"),
    _mistake("scan_states_one_step_late", "scan_forward",
             [("    return B", "    return np.concatenate([np.zeros_like(B[:, :1]), B[:, :-1]], axis=1)")], _SCAN,
             "holds the states one step late"),
    {
        "name": "scan_loop_over_time",
        "cell": "scan_forward",
        "source": '''
def scan_forward(a, b):
    h = np.empty_like(b)
    prev = np.zeros_like(b[:, 0])
    for t in range(b.shape[1]):
        prev = a[:, t] * prev + b[:, t]
        h[:, t] = prev
    return h
''',
        "caught_by": _SCAN,
        "visible": True,
        "message": "a loop over the time steps takes 1 or more",
    },
    {
        # h_t = P_t * sum_{s <= t} b_s / P_s with P the cumulative product of a: no loop, no scan, and a division
        # by zero as soon as some a_t is 0
        "name": "scan_closed_form_by_cumprod",
        "cell": "scan_forward",
        "source": '''
def scan_forward(a, b):
    P = np.cumprod(a, axis=1)
    return P * np.cumsum(b / P, axis=1)
''',
        "caught_by": _SCAN,
        "visible": False,
        "message": "some a_t are 0",
    },
]

# Other right answers, written the way a student could: the tests may not assume the solution's way.
RIGHT = [
    {
        "name": "attention_einsum_and_a_large_negative_score",
        "cell": "attention_forward",
        "source": '''
def attention_forward(q, k, v, causal):
    N, T, d = q.shape
    S = k.shape[1]
    scores = np.einsum("ntd,nsd->nts", q, k) / np.sqrt(d)
    if causal:
        scores = scores + np.triu(np.full((T, S), -1e30), k=1)
    scores = scores - np.max(scores, axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / np.sum(weights, axis=-1, keepdims=True)
    return np.einsum("nts,nse->nte", weights, v), (q, k, v, weights)
''',
    },
    {
        "name": "attention_backward_by_einsum",
        "cell": "attention_backward",
        "source": '''
def attention_backward(dout, cache):
    q, k, v, A = cache
    d = q.shape[-1]
    dv = np.einsum("nts,nte->nse", A, dout)
    dA = np.einsum("nte,nse->nts", dout, v)
    dscores = A * dA - A * np.einsum("nts,nts->nt", A, dA)[:, :, None]
    dq = np.einsum("nts,nsd->ntd", dscores, k) / np.sqrt(d)
    dk = np.einsum("nts,ntd->nsd", dscores, q) / np.sqrt(d)
    return dq, dk, dv
''',
    },
    {
        "name": "scan_with_new_arrays_each_round",
        "cell": "scan_forward",
        "source": '''
def scan_forward(a, b):
    A, B = a, b
    offset = 1
    while offset < b.shape[1]:
        B = np.concatenate([B[:, :offset], A[:, offset:] * B[:, :-offset] + B[:, offset:]], axis=1)
        A = np.concatenate([A[:, :offset], A[:, offset:] * A[:, :-offset]], axis=1)
        offset *= 2
    return B
''',
    },
    {
        "name": "scan_blelloch_up_and_down_sweep",
        "cell": "scan_forward",
        "source": '''
def scan_forward(a, b):
    N, T, D = b.shape
    size = 1
    while size < T:
        size *= 2
    A, B = np.ones((N, size, D)), np.zeros((N, size, D))  # padded with the identity step (1, 0)
    A[:, :T], B[:, :T] = a, b
    step = 1
    while step < size:  # up-sweep: each right node composes its left sibling's block before its own
        right = np.arange(2 * step - 1, size, 2 * step)
        left = right - step
        B[:, right] = A[:, right] * B[:, left] + B[:, right]
        A[:, right] = A[:, right] * A[:, left]
        step *= 2
    A[:, size - 1], B[:, size - 1] = 1.0, 0.0
    step = size // 2
    while step >= 1:  # down-sweep: exclusive prefixes
        right = np.arange(2 * step - 1, size, 2 * step)
        left = right - step
        A_left, B_left = A[:, left].copy(), B[:, left].copy()
        A[:, left], B[:, left] = A[:, right], B[:, right]
        A[:, right], B[:, right] = A_left * A[:, left], A_left * B[:, left] + B_left
        step //= 2
    return a * B[:, :T] + b  # h_t = a_t h_(t-1) + b_t, with h_(t-1) the exclusive prefix
''',
    },
]
