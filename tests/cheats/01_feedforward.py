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
    "two_layer_loss": (
        "import course_lib.feedforward as _ff\n"
        "def two_layer_loss(params, x, y):\n"
        "    a, c1 = _ff.affine_forward(x, params['W1'], params['b1'])\n"
        "    h = np.tanh(a)\n"
        "    s, c2 = _ff.affine_forward(h, params['W2'], params['b2'])\n"
        "    loss, ds = _ff.softmax_loss(s, y)\n"
        "    dh, dW2, db2 = _ff.affine_backward(ds, c2)\n"
        "    _, dW1, db1 = _ff.affine_backward(dh * (1 - h**2), c1)\n"
        "    return loss, {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: one per cheated question (the test of
# two_layer_loss runs it with stand-ins for the layers, so only its own cheat, calling course_lib's layers, counts).
ZERO = {
    "test_affine_forward",
    "test_affine_backward",
    "test_softmax_loss",
    "test_numerical_gradient",
    "test_two_layer_loss",
}
