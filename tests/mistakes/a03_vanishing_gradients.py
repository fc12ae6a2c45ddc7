"""Plausible wrong answers to assignment 03_vanishing_gradients (the format is in tests/test_mistakes.py)."""

_NORMS = '''
def hidden_grad_norms(dh, h, Wh):
    N, T, H = h.shape
    norms = np.empty(T)
    from_next = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        g = {g}
        norms[t] = {norm}
        from_next = {back}
    return {result}
'''
_NORMS_OK = {"g": "dh[:, t] + from_next", "norm": "np.sqrt(np.sum(g * g))",
             "back": "(g * (1.0 - h[:, t] ** 2)) @ Wh.T", "result": "norms"}

_CLIP = '''
def clip_by_global_norm(grads, max_norm):
    total_norm = {total}
    coef = {coef}
    clipped = {clipped}
    return clipped, {returned}
'''
_CLIP_OK = {"total": "float(np.sqrt(sum(np.sum(g * g) for g in grads)))",
            "coef": "min(1.0, max_norm / (total_norm + 1e-6))", "clipped": "[g * coef for g in grads]",
            "returned": "total_norm"}

_RATE = '''
def fitted_rate(norms):
    norms = np.asarray(norms, dtype=np.float64)
    k = {k}
    slope = {slope}
    return float({result})
'''
_RATE_OK = {"k": "np.arange(len(norms))[::-1]", "slope": "np.polyfit(k, np.log(norms), 1)[0]",
            "result": "np.exp(slope)"}

MISTAKES = [
    {
        "name": "norms_last_dh_only",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, g="(dh[:, t] if t == T - 1 else 0) + from_next")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "only dh[:, -1] is used",
    },
    {
        "name": "norms_reversed",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, result="norms[::-1]")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "the norms are in reverse order",
    },
    {
        "name": "norms_squared",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, norm="np.sum(g * g)")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "these are squared norms",
    },
    {
        "name": "norms_no_tanh_derivative",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, back="g @ Wh.T")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "the derivative of the tanh, 1 - h**2, is missing",
    },
    {
        "name": "norms_through_Wh_not_transposed",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, back="(g * (1.0 - h[:, t] ** 2)) @ Wh")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "instead of its transpose Wh.T",
    },
    {
        "name": "norms_mean_over_batch",
        "cell": "hidden_grad_norms",
        "source": _NORMS.format(**dict(_NORMS_OK, norm="np.mean(np.sqrt(np.sum(g * g, axis=1)))")),
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "these are the norms of each example, averaged over the batch",
    },
    {
        "name": "clip_per_array",
        "cell": "clip_by_global_norm",
        "source": _CLIP.format(**dict(_CLIP_OK, coef="None", clipped=(
            "[g * min(1.0, max_norm / (float(np.sqrt(np.sum(g * g))) + 1e-6)) for g in grads]"))),
        "caught_by": "test_clip_by_global_norm",
        "visible": True,
        "message": "each array is clipped by its own norm",
    },
    {
        "name": "clip_without_epsilon",
        "cell": "clip_by_global_norm",
        "source": _CLIP.format(**dict(_CLIP_OK, coef="min(1.0, max_norm / total_norm)")),
        "caught_by": "test_clip_by_global_norm",
        "visible": True,
        "message": "the 1e-6 in the denominator is missing",
    },
    {
        "name": "clip_returns_norm_after",
        "cell": "clip_by_global_norm",
        "source": _CLIP.format(**dict(_CLIP_OK, returned="total_norm * coef")),
        "caught_by": "test_clip_by_global_norm",
        "visible": True,
        "message": "this is the norm after clipping",
    },
    {
        "name": "clip_in_place",
        "cell": "clip_by_global_norm",
        "source": '''
def clip_by_global_norm(grads, max_norm):
    total_norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
    coef = min(1.0, max_norm / (total_norm + 1e-6))
    for g in grads:
        g *= coef
    return grads, total_norm
''',
        "caught_by": "test_clip_by_global_norm",
        "visible": True,
        "message": "the input arrays were modified",
    },
    {
        "name": "clip_scales_up",
        "cell": "clip_by_global_norm",
        "source": _CLIP.format(**dict(_CLIP_OK, coef="max_norm / (total_norm + 1e-6)")),
        "caught_by": "test_clip_by_global_norm",
        "visible": True,
        "message": "gradients below the threshold were scaled up",
    },
    {
        "name": "rate_from_endpoints",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, slope="np.log(norms[0] / norms[-1]) / (len(norms) - 1)")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "this rate comes from the two endpoints only",
    },
    {
        "name": "rate_direction_inverted",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, k="np.arange(len(norms))")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "the rate is inverted",
    },
    {
        "name": "rate_returns_slope",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, result="slope")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "this is log r",
    },
    {
        "name": "rate_log10",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, slope="np.polyfit(k, np.log10(norms), 1)[0]")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "fitted to log10 of the norms",
    },
    {
        "name": "rate_intercept",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, slope="np.polyfit(k, np.log(norms), 1)[1]")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "np.polyfit returns the slope first",
    },
    {
        # fits only the last 10 steps (a "transient" cut the wrong way): right on the visible exact and short curves
        "name": "rate_last_ten_steps",
        "cell": "fitted_rate",
        "source": _RATE.format(**dict(_RATE_OK, slope="np.polyfit(k[-10:], np.log(norms[-10:]), 1)[0]")),
        "caught_by": "test_fitted_rate",
        "visible": True,
        "message": "a least-squares fit through every point",
    },
]

# A right answer that writes into its input dh (the instructions forbid modifying the inputs of
# clip_by_global_norm only): the tests hand it a copy, so it scores full marks in every mode (assert, record).
RIGHT = [
    {
        "name": "grad_norms_in_place_dh",
        "cell": "hidden_grad_norms",
        "source": '''
def hidden_grad_norms(dh, h, Wh):
    N, T, H = h.shape
    norms = np.empty(T)
    for t in range(T - 1, -1, -1):
        norms[t] = np.sqrt(np.sum(dh[:, t] ** 2))
        if t > 0:
            dh[:, t - 1] += (dh[:, t] * (1.0 - h[:, t] ** 2)) @ Wh.T
    return norms
''',
    },
]

MISTAKES += [
    {
        # the release says "do not loop over the batch": a loop over the examples inside the loop over time
        "name": "norms_loop_over_batch",
        "cell": "hidden_grad_norms",
        "source": '''
def hidden_grad_norms(dh, h, Wh):
    N, T, H = h.shape
    norms = np.empty(T)
    from_next = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        g = dh[:, t] + from_next
        norms[t] = np.sqrt(np.sum(g * g))
        for n in range(N):
            from_next[n] = (g[n] * (1.0 - h[n, t] ** 2)) @ Wh.T
    return norms
''',
        "caught_by": "test_hidden_grad_norms",
        "visible": True,
        "message": "Python steps per extra example of the batch",
    },
]
