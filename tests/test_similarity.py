"""course_lib.grading.similarity: near-copies are listed (renamed, reordered, copied from course_lib), honest
different solutions are not, and no score changes."""

from __future__ import annotations

import csv
import inspect
import re
import subprocess
import sys

import pytest

from course_lib import feedforward
from course_lib.grading.similarity import compare, fingerprints, tokens

HONEST_A = '''
def affine_forward(x, W, b):
    out = np.dot(x, W) + b[None, :]
    cache = (x, W)
    return out, cache


def affine_backward(dout, cache):
    x, W = cache
    dx = np.dot(dout, W.T)
    dW = np.dot(x.T, dout)
    db = np.sum(dout, axis=0)
    return dx, dW, db


def softmax_loss(s, y):
    n = len(y)
    z = s - np.max(s, axis=1, keepdims=True)
    p = np.exp(z)
    p = p / np.sum(p, axis=1, keepdims=True)
    loss = -np.mean(np.log(p[range(n), y]))
    grad = p.copy()
    grad[range(n), y] = grad[range(n), y] - 1
    return float(loss), grad / n
'''

HONEST_B = '''
def affine_forward(x, W, b):
    rows = []
    for row in x:
        rows.append(row @ W + b)
    return np.array(rows), (x, W)


def affine_backward(dout, cache):
    inputs, weights = cache
    grad_b = dout.sum(0)
    grad_w = np.einsum("nd,nm->dm", inputs, dout)
    grad_x = np.einsum("nm,dm->nd", dout, weights)
    return grad_x, grad_w, grad_b


def softmax_loss(s, y):
    total = 0.0
    grads = np.zeros_like(s)
    for i, label in enumerate(y):
        e = np.exp(s[i] - s[i].max())
        probs = e / e.sum()
        total -= np.log(probs[label])
        probs[label] -= 1.0
        grads[i] = probs
    count = s.shape[0]
    return total / count, grads / count
'''

# HONEST_A with every variable renamed, independent statements reordered, functions in another order, comments
COPY_OF_A = '''
def softmax_loss(scores, labels):
    # my own softmax
    m = len(labels)
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs = probs / np.sum(probs, axis=1, keepdims=True)
    the_loss = -np.mean(np.log(probs[range(m), labels]))
    g = probs.copy()
    g[range(m), labels] = g[range(m), labels] - 1
    return float(the_loss), g / m


def affine_backward(upstream, saved):
    inp, weights = saved
    d_bias = np.sum(upstream, axis=0)
    d_weights = np.dot(inp.T, upstream)
    d_inp = np.dot(upstream, weights.T)
    return d_inp, d_weights, d_bias


def affine_forward(inp, weights, bias):
    result = np.dot(inp, weights) + bias[None, :]
    saved = (inp, weights)
    return result, saved
'''

STUBS = '''
def affine_forward(x, W, b):
    """Affine layer forward pass."""
    # YOUR CODE HERE
    raise NotImplementedError()
    return out, cache


def affine_backward(dout, cache):
    # YOUR CODE HERE
    raise NotImplementedError()
    return dx, dW, db


def softmax_loss(s, y):
    # YOUR CODE HERE
    raise NotImplementedError()
    return float(loss), ds
'''


def from_course_lib() -> str:
    """course_lib's softmax_loss and affine_backward, renamed, as a student who copied them would hand in."""
    code = "\n\n".join(inspect.getsource(f) for f in (feedforward.softmax_loss, feedforward.affine_backward))
    code = re.sub(r'r?"""(.|\n)*?"""', "", code)  # without the docstrings
    for old, new in (("scores", "logits"), ("logp", "log_probabilities"), ("dscores", "grad"), ("dout", "g"),
                     ("x2", "flat_x")):
        code = re.sub(rf"\b{old}\b", new, code)
    return code


REFERENCES = {"course_lib": "\n\n".join(inspect.getsource(f) for f in (
    feedforward.softmax_loss, feedforward.affine_backward, feedforward.affine_forward))}


def test_tokens_ignore_names_comments_and_docstrings_but_keep_the_method():
    a = tokens('def f(x):\n    """doc"""\n    # note\n    return np.exp(x).sum(axis=1)\n')
    b = tokens("def g(values):\n    return np.exp(values).sum(axis=2)\n")
    assert a == b
    assert "exp" in a and "sum" in a and "x" not in a


def test_renamed_and_reordered_copies_are_found_and_honest_solutions_are_not():
    students = {"alice": HONEST_A, "bob": HONEST_B, "carol": COPY_OF_A, "dave": from_course_lib()}
    matches = compare(students, REFERENCES, STUBS)
    found = {(m.student, m.other) for m in matches}
    assert ("alice", "carol") in found  # renamed variables, reordered statements and functions
    assert ("dave", "course_lib") in found  # copied from course_lib, renamed
    # different honest solutions: neither a copy of each other nor of course_lib
    assert found == {("alice", "carol"), ("dave", "course_lib")}
    carol = next(m for m in matches if (m.student, m.other) == ("alice", "carol"))
    assert carol.similarity >= 0.75 and carol.kind == "student"


def test_what_every_student_was_given_is_not_a_copy():
    students = {"x": STUBS, "y": STUBS}
    assert compare(students, {}, STUBS) == []
    assert fingerprints("") == set()


@pytest.mark.slow
def test_the_command_writes_the_report_and_changes_no_score(tmp_path):
    from grading_helpers import ASSIGNMENT, make_course, run, scores, source_nb, submit, with_source

    course = make_course(tmp_path / "course")
    for student, code in {"alice": HONEST_A, "=SUM(1,2)": COPY_OF_A, "bob": HONEST_B}.items():
        nb = source_nb()
        for name in ("affine_forward", "affine_backward", "softmax_loss"):
            source = code.split("\n\n\n")
            nb = with_source(nb, name, next(s for s in source if f"def {name}(" in s).strip() + "\n")
        # the questions these students did not answer: left as released, not the solution's code (each function
        # is compared on its own, and the solution's code in every notebook is rightly a copy of the solution)
        for name, args in (("numerical_gradient", "f, x, dout=None, h=1e-5"), ("two_layer_loss", "params, x, y")):
            nb = with_source(nb, name, f"def {name}({args}):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")
        submit(course, student, nb)
    before = scores(f"sqlite:///{course / 'gradebook.db'}")
    out = run(course, "course_lib.grading", "similarity", ASSIGNMENT)
    assert "near-copies to review" in out.stdout
    with open(course / "reports" / ASSIGNMENT / "similarity.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    pairs = {(r["student"], r["similar_to"]) for r in rows}
    assert ("'=SUM(1,2)", "alice") in pairs  # sorted ids: "=SUM(1,2)" < "alice"; the formula is defused
    assert not any("bob" in pair for pair in pairs)
    assert {r["similar_to"] for r in rows if r["kind"].startswith("too short to tell")} == {
        "affine_backward affine_forward"}  # said in the report, not silently left out
    assert scores(f"sqlite:///{course / 'gradebook.db'}") == before
    bad = subprocess.run([sys.executable, "-m", "course_lib.grading", "similarity", "nope", "--course",
                          str(course)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not in the gradebook" in bad.stderr


# -- calibration: the labelled corpus of tests/similarity_corpus (honest answers, disguised copies) -------------

import similarity_corpus as corpus  # noqa: E402

from course_lib.grading import similarity as sim  # noqa: E402


def test_disguises_do_not_change_the_canonical_form():
    code = ("def f(x, W):\n    a = x @ W\n    b = x.sum(axis=0)\n    return a, b\n")
    disguised = ("def f(inp, weights):\n    # the sum first\n    total = inp.sum(axis=0)\n    pass\n"
                 "    unused = 0\n    if False:\n        total = 1\n    out = (inp @ weights)\n"
                 "    out = out\n    assert True\n    return out, total\n")
    assert sim.canonical(code) == sim.canonical(disguised)
    # statements that depend on each other keep their order; a method that changes its object is a write
    assert sim.canonical("def f(x):\n    x.append(1)\n    y = len(x)\n    return y\n") != sim.canonical(
        "def f(x):\n    y = len(x)\n    x.append(1)\n    return y\n")


@pytest.mark.parametrize("assignment", corpus.assignments())
def test_the_rule_separates_the_labelled_corpus(assignment):
    """Every copy in the corpus is listed and no honest pair is (benchmarks/bench_similarity.py prints the
    distributions); whole copies score at least 0.95 and honest pairs stay well under the threshold."""
    result = corpus.measure(assignment)
    copies = [p for p in result["pairs"] if p[2] == "copy"]
    honest = [p for p in result["pairs"] if p[2] == "honest"]
    assert len(corpus.honest(assignment)) >= 3 and len(copies) >= 10 and len(honest) >= 30
    assert not [p[:2] for p in honest if p[6]], "honest pairs flagged"
    missed = [p[:2] for p in copies if not p[6]]
    assert len(missed) <= 0.1 * len(copies), f"copies missed: {missed}"
    whole = [p for p in copies if not any(n.startswith("part_") for n in p[:2])]
    assert min(p[4] for p in whole) >= 0.95
    assert max(p[4] for p in honest) <= sim.THRESHOLD - 0.1


def test_short_canonical_functions_are_said_to_be_too_short():
    solution = "def affine_forward(x, W, b):\n    out = x @ W + b\n    cache = (x, W)\n    return out, cache\n\n" + (
        HONEST_A[HONEST_A.index("def softmax_loss"):])
    assert sim.too_short(solution, STUBS) == ["affine_forward"]


@pytest.fixture(scope="module")
def graders():
    from test_mistakes import Assignment

    opened = {}

    def get(name):
        if name not in opened:
            opened[name] = Assignment(name)
        return opened[name]

    yield get
    for assignment in opened.values():
        assignment.close()


HONEST_CELLS = [(a, s, gid) for a in corpus.assignments() for s, cells in corpus.honest(a).items() for gid in cells]


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "student", "cell"), HONEST_CELLS,
                         ids=[f"{a}/{s}/{g}" for a, s, g in HONEST_CELLS])
def test_honest_answer_scores_full_marks(graders, assignment, student, cell):
    """The corpus's honest answers are right: each scores full marks with the in-process checker."""
    graded = graders(assignment).grade_with(cell, corpus.honest(assignment)[student][cell])
    assert not any(graded.values()), {gid: problems for gid, problems in graded.items() if problems}
