"""Plausible wrong answers to assignment 04_lstm (the format is documented in tests/test_mistakes.py).

Each wrong answer is the solution cell of the source notebook with one mistake put in (see _variants.py).
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_variants", Path(__file__).with_name("_variants.py"))
_variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_variants)
_mistake = _variants.mistake_maker("04_lstm")

_F, _B, _G = "test_lstm_step_forward", "test_lstm_step_backward", "test_gru_step_forward"
_S, _C = "test_lstm_sequence", "test_classifier_loss"

MISTAKES = [
    # --- lstm_step_forward
    _mistake("forward_gate_order_cs231n", "lstm_step_forward",
             [("g = np.tanh(a[:, 2 * H:3 * H])", "g = np.tanh(a[:, 3 * H:])"),
              ("o = sigmoid(a[:, 3 * H:])", "o = sigmoid(a[:, 2 * H:3 * H])")], _F,
             "CS231n's assignment uses i, f, o, g"),
    _mistake("forward_input_forget_swapped", "lstm_step_forward",
             [("i = sigmoid(a[:, :H])", "i = sigmoid(a[:, H:2 * H])"),
              ("f = sigmoid(a[:, H:2 * H])", "f = sigmoid(a[:, :H])")], _F, "swapping the input and forget gates"),
    # the gates read from the right blocks, then used the wrong way round: the forget gate on the new candidate
    _mistake("forward_forget_on_candidate", "lstm_step_forward",
             [("c = f * c_prev + i * g", "c = i * c_prev + f * g")], _F, "swapping the input and forget gates"),
    _mistake("forward_h_without_tanh", "lstm_step_forward", [("h = o * tanh_c", "h = o * c")], _F,
             "is o * c: the output gate multiplies tanh(c)"),
    _mistake("forward_no_bias", "lstm_step_forward", [("a = x @ Wx + h_prev @ Wh + b", "a = x @ Wx + h_prev @ Wh")],
             _F, "leaving the bias b out"),
    _mistake("forward_no_recurrence", "lstm_step_forward", [("a = x @ Wx + h_prev @ Wh + b", "a = x @ Wx + b")], _F,
             "leaving h_prev @ Wh out"),
    _mistake("forward_forgets_c_prev", "lstm_step_forward", [("c = f * c_prev + i * g", "c = i * g")], _F,
             "ignores c_prev"),
    _mistake("forward_cache_in_other_order", "lstm_step_forward",
             [("cache = (x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)",
               "cache = (x, h_prev, c_prev, Wx, Wh, i, f, o, g, tanh_c)")], _F, "the cache, which must be"),
    _mistake("forward_sigmoid_overflows", "lstm_step_forward",
             [("i = sigmoid(a[:, :H])", "i = 1 / (1 + np.exp(-a[:, :H]))"),
              ("f = sigmoid(a[:, H:2 * H])", "f = 1 / (1 + np.exp(-a[:, H:2 * H]))"),
              ("o = sigmoid(a[:, 3 * H:])", "o = 1 / (1 + np.exp(-a[:, 3 * H:]))")], _F,
             "np.exp fails on pre-activations of +-1000", visible=False),
    # its own sigmoid, as a helper (the release says to use the sigmoid defined above): right on the visible
    # inputs, it overflows on the hidden test's pre-activations of about -1000; the hidden check's message
    # (which a line of the hidden test spells) must reach the feedback, not a redaction notice
    _mistake("forward_own_sigmoid", "lstm_step_forward",
             [("H = h_prev.shape[1]\n", "H = h_prev.shape[1]\n\n    def my_sigmoid(z):\n"
                                         "        return 1.0 / (1.0 + np.exp(-z))\n\n"),
              ("i = sigmoid(a[:, :H])", "i = my_sigmoid(a[:, :H])"),
              ("f = sigmoid(a[:, H:2 * H])", "f = my_sigmoid(a[:, H:2 * H])"),
              ("o = sigmoid(a[:, 3 * H:])", "o = my_sigmoid(a[:, 3 * H:])")], _F,
             "use the sigmoid defined above", visible=False),
    # --- lstm_step_backward
    _mistake("backward_no_path_through_h", "lstm_step_backward",
             [("dc_total = dc + dh * o * (1 - tanh_c**2)", "dc_total = dc")], _B,
             "misses the gradient that reaches c through h"),
    _mistake("backward_dc_prev_without_f", "lstm_step_backward", [("dc_prev = dc_total * f", "dc_prev = dc_total")],
             _B, "not multiplied by the forget gate f"),
    _mistake("backward_gate_order_cs231n", "lstm_step_backward",
             [("dc_total * i * (1 - g**2), dh * tanh_c * o * (1 - o)]",
               "dh * tanh_c * o * (1 - o), dc_total * i * (1 - g**2)]")],
             _B, "not CS231n's i, f, o, g"),
    _mistake("backward_db_mean", "lstm_step_backward", [("db = da.sum(axis=0)", "db = da.mean(axis=0)")], _B,
             "db is averaged over the batch"),
    _mistake("backward_g_sigmoid_derivative", "lstm_step_backward",
             [("dc_total * i * (1 - g**2)", "dc_total * i * g * (1 - g)")], _B, "uses the sigmoid's derivative"),
    _mistake("backward_o_without_tanh_c", "lstm_step_backward",
             [("dh * tanh_c * o * (1 - o)", "dh * o * (1 - o)")], _B, "misses tanh(c)"),
    _mistake("backward_dWx_transposed", "lstm_step_backward", [("dWx = x.T @ da", "dWx = da.T @ x")], _B,
             "transposed"),
    # --- gru_step_forward
    _mistake("gru_z_swapped", "gru_step_forward", [("h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev")],
             _G, "swaps z and 1 - z"),
    _mistake("gru_reset_without_bias", "gru_step_forward",
             [("n = np.tanh(u[:, 2 * H:] + r * v[:, 2 * H:])",
               "n = np.tanh(u[:, 2 * H:] + r * (h_prev @ Wh[:, 2 * H:]) + bh[2 * H:])")], _G,
             "to h_prev @ Whn but not to the bias bhn"),
    _mistake("gru_reset_before_product", "gru_step_forward",
             [("n = np.tanh(u[:, 2 * H:] + r * v[:, 2 * H:])",
               "n = np.tanh(u[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:] + bh[2 * H:])")], _G,
             "the original GRU paper's variant"),
    _mistake("gru_gates_swapped", "gru_step_forward",
             [("r = sigmoid(u[:, :H] + v[:, :H])", "r = sigmoid(u[:, H:2 * H] + v[:, H:2 * H])"),
              ("z = sigmoid(u[:, H:2 * H] + v[:, H:2 * H])", "z = sigmoid(u[:, :H] + v[:, :H])")], _G,
             "has the blocks of r and z swapped"),
    # --- lstm_sequence_forward / lstm_sequence_backward
    _mistake("sequence_forgets_later_steps", "lstm_sequence",
             [("lstm_step_backward(dh[:, t] + dh_next, dc_next, caches[t])",
               "lstm_step_backward(dh[:, t], np.zeros((N, H)), caches[t])")], _S,
             "misses the gradient that flows back from later steps"),
    _mistake("sequence_forgets_dh_next_only", "lstm_sequence",
             [("lstm_step_backward(dh[:, t] + dh_next, dc_next, caches[t])",
               "lstm_step_backward(dh[:, t], dc_next, caches[t])")], _S, "misses the dh_prev that step t+1 returns"),
    _mistake("sequence_time_major", "lstm_sequence",
             [("h = np.empty((N, T, h0.shape[1]))", "h = np.empty((T, N, h0.shape[1]))"),
              ("h[:, t] = h_t", "h[t] = h_t")], _S, "has shape (4, 2, 4) where (2, 4, 4) is expected"),
    _mistake("sequence_c0_every_step", "lstm_sequence",
             [("h_t, c_t, cache = lstm_step_forward(x[:, t], h_t, c_t, Wx, Wh, b)",
               "h_t, _, cache = lstm_step_forward(x[:, t], h_t, c0, Wx, Wh, b)")], _S,
             "starts every step from c0"),
    _mistake("sequence_inlines_an_lstm", "lstm_sequence",
             [("h_t, c_t, cache = lstm_step_forward(x[:, t], h_t, c_t, Wx, Wh, b)",
               "a = x[:, t] @ Wx + h_t @ Wh + b\n"
               "        H = h_t.shape[1]\n"
               "        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), "
               "sigmoid(a[:, 3 * H:])\n"
               "        c_t = f * c_t + i * g\n"
               "        h_t = o * np.tanh(c_t)\n"
               "        cache = (x[:, t], h_t, c_t, Wx, Wh, i, f, g, o, np.tanh(c_t))")], _S, "call lstm_step_forward"),
    # --- classifier_loss
    _mistake("classifier_gradient_at_every_step", "classifier_loss",
             [("dh[:, -1] = dscores @ params[\"Wy\"].T", "dh[:] = (dscores @ params[\"Wy\"].T)[:, None]")], _C,
             "a nonzero dh at every step"),
    _mistake("classifier_dWy_transposed", "classifier_loss",
             [('"Wy": last.T @ dscores', '"Wy": dscores.T @ last')], _C, "transposed"),
    _mistake("classifier_dby_mean", "classifier_loss",
             [('"by": dscores.sum(axis=0)', '"by": dscores.mean(axis=0)')], _C, "times the expected value"),
]


# Right answers written another way, which the tests must accept (tests/test_mistakes.py). The sequence test
# runs stand-in step functions: a backward pass that sizes its arrays from the step caches (x, h_prev, c_prev
# first, as question 1 asks) must work with theirs.
RIGHT = [
    {"name": "sequence_sizes_from_the_caches", "cell": "lstm_sequence",
     "source": _mistake.variant("lstm_sequence", [
         ("N, T, H = dh.shape\n",
          "T, (N, D), H = len(caches), caches[0][0].shape, caches[0][1].shape[1]\n"),
         ("dx_steps, dh_next, dc_next = [None] * T, np.zeros((N, H)), np.zeros((N, H))",
          "dx_steps, dh_next, dc_next = [None] * T, np.zeros_like(caches[0][1]), np.zeros_like(caches[0][2])"),
         ("dx = np.stack(dx_steps, axis=1)",
          "dx = np.zeros((N, T, D))\n    for t in range(T):\n        dx[:, t] = dx_steps[t]")])},
]
