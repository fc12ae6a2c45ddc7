"""Answers to assignment 06_seq2seq that delegate to course_lib instead of doing the work.

Each entry maps the grade_id of a solution cell to replacement source; the round-trip test submits them and
expects zero points on the matching questions (their hidden tests use course_lib.testing.forbid_calls_into).
"""

CHEATS = {
    "attention_forward": (
        "from course_lib.seq2seq import attention_forward as _ref_attention_forward\n"
        "def attention_forward(s, h, mask, Wq, Wk, v):\n"
        "    return _ref_attention_forward(s, h, mask, Wq, Wk, v)\n"
    ),
    "attention_backward": (
        "import course_lib.seq2seq as _s2s\n"
        "def attention_backward(dc, cache):\n"
        "    return _s2s.attention_backward(dc, cache)\n"
    ),
    "greedy_decode": (
        "import course_lib.seq2seq as _s2s\n"
        "def greedy_decode(step, state, n, max_len):\n"
        "    return _s2s.greedy_decode(step, state, n, max_len)\n"
    ),
    "beam_search": (
        "from course_lib import seq2seq as _s2s\n"
        "def beam_search(step, state, n, beam, max_len, alpha=1.0):\n"
        "    return _s2s.beam_search(step, state, n, beam, max_len, alpha)\n"
    ),
    "corpus_bleu": (
        "from course_lib.seq2seq import corpus_bleu as _ref_bleu\n"
        "def corpus_bleu(hypotheses, references, max_n=4):\n"
        "    return _ref_bleu(hypotheses, references, max_n)['bleu']\n"
    ),
}

# grade_ids of the test cells that must score zero with these answers: every question is cheated here.
ZERO = {
    "test_attention_forward",
    "test_attention_backward",
    "test_greedy_decode",
    "test_beam_search",
    "test_corpus_bleu",
}
