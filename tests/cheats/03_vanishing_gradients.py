"""Answers to assignment 03_vanishing_gradients that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "hidden_grad_norms": (
        "from course_lib.gradients import per_step_grad_norms as _ref\n"
        "def hidden_grad_norms(dh, h, Wh):\n"
        "    return _ref(dh, (None, None, None, Wh, h))\n"
    ),
    "clip_by_global_norm": (
        "import course_lib.gradients as _gr\n"
        "def clip_by_global_norm(grads, max_norm):\n"
        "    return _gr.clip_by_global_norm(list(grads), max_norm)\n"
    ),
    "fitted_rate": (
        "import types, course_lib.gradients as _gr\n"
        "_ref = _gr.fitted_rate\n"
        "fitted_rate = types.FunctionType(_ref.__code__, dict(_gr.__dict__), None, _ref.__defaults__)\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: one per cheated question.
ZERO = {"test_hidden_grad_norms", "test_clip_by_global_norm", "test_fitted_rate"}
