"""Answers to assignment 02_rnn that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "rnn_step_forward": "from course_lib.rnn import rnn_step_forward\n",
    "rnn_step_backward": (
        "import course_lib.rnn as _rnn\n"
        "def rnn_step_backward(dh, cache):\n"
        "    return _rnn.rnn_step_backward(dh, cache)\n"
    ),
    "rnn_forward": (
        "import types, course_lib.rnn as _rnn\n"
        "rnn_forward = types.FunctionType(_rnn.rnn_forward.__code__, dict(_rnn.__dict__))\n"
    ),
    "rnn_backward": (
        "from course_lib.rnn import rnn_backward as _ref_rnn_backward\n"
        "def rnn_backward(dh, cache):\n"
        "    return _ref_rnn_backward(dh, cache)\n"
    ),
    "sample_from_scores": "from course_lib.rnn import sample_from_scores\n",
    "generate": (
        "from course_lib.charlm import CharRNN\n"
        "def generate(params, prefix, length, temperature, rng, num_samples=1):\n"
        "    return CharRNN(params).sample(prefix, length, temperature, int(rng.integers(1000)), num_samples)\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: every question is cheated here.
ZERO = {
    "test_rnn_step_forward",
    "test_rnn_step_backward",
    "test_rnn_forward",
    "test_rnn_backward",
    "test_sample_from_scores",
    "test_generate",
}
