"""Answers to assignment 01_feedforward that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "affine_forward": (
        "from course_lib.feedforward import affine_forward as _ref_affine_forward\n"
        "def affine_forward(x, W, b):\n"
        "    return _ref_affine_forward(x, W, b)\n"
    ),
    "affine_backward": (
        "import course_lib.feedforward as _ff\n"
        "def affine_backward(dout, cache):\n"
        "    return _ff.affine_backward(dout, cache)\n"
    ),
    "softmax_loss": (
        "import types, course_lib.feedforward as _ff\n"
        "softmax_loss = types.FunctionType(_ff.softmax_loss.__code__, dict(_ff.__dict__))\n"
    ),
    "numerical_gradient": "from course_lib.gradcheck import numerical_gradient\n",
}

# grade_ids of the test cells that must score zero with these answers: each cheated question, plus
# test_two_layer_loss, which builds on the cheated layers and so also runs reference code.
ZERO = {
    "test_affine_forward",
    "test_affine_backward",
    "test_softmax_loss",
    "test_numerical_gradient",
    "test_two_layer_loss",
}
