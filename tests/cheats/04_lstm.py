"""Answers to assignment 04_lstm that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "lstm_step_forward": (
        "from course_lib.lstm import lstm_step_forward as _ref_lstm_step_forward\n"
        "def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):\n"
        "    return _ref_lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)\n"
    ),
    "lstm_step_backward": (
        "import course_lib.lstm as _lstm\n"
        "def lstm_step_backward(dh, dc, cache):\n"
        "    return _lstm.lstm_step_backward(dh, dc, cache)\n"
    ),
    "gru_step_forward": (
        "import types, course_lib.gru as _gru\n"
        "gru_step_forward = types.FunctionType(_gru.gru_step_forward.__code__, dict(_gru.__dict__))\n"
    ),
    "lstm_sequence": (
        "import numpy as _np\n"
        "from course_lib import lstm as _lstm\n"
        "def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):\n"
        "    h, _, cache = _lstm.lstm_forward(x, h0, c0, Wx, Wh, b)\n"
        "    return h, cache\n"
        "def lstm_sequence_backward(dh, caches):\n"
        "    return _lstm.lstm_backward(dh, caches)\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: every question is cheated here (and
# each later test also calls the cheated functions of the earlier ones).
ZERO = {
    "test_lstm_step_forward",
    "test_lstm_step_backward",
    "test_gru_step_forward",
    "test_lstm_sequence",
}
