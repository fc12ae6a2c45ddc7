"""Answers to assignment 07_after_attention that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "attention_forward": (
        "from course_lib.attention import attention_forward as _ref_attention, causal_mask as _causal_mask\n"
        "def attention_forward(q, k, v, causal):\n"
        "    out, cache = _ref_attention(q, k, v, _causal_mask(q.shape[1], k.shape[1]) if causal else None)\n"
        "    return out, cache[:4]\n"
    ),
    "attention_backward": (
        "import course_lib.attention as _at\n"
        "def attention_backward(dout, cache):\n"
        "    q, k, v, A = cache\n"
        "    return _at.attention_backward(dout, (q, k, v, A, 1 / np.sqrt(q.shape[-1])))\n"
    ),
    "scan_forward": (
        "from course_lib import scan as _scan\n"
        "def scan_forward(a, b):\n"
        "    return _scan.parallel_scan(a, b)\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: every question is cheated here.
ZERO = {
    "test_attention_forward",
    "test_attention_backward",
    "test_scan_forward",
}
