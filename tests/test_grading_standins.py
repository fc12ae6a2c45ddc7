"""Stand-ins for the functions a question composes cannot serve as answers (issue 25, item 1).

Questions that compose other answers (01's two_layer_loss; 02's rnn_forward, rnn_backward and generate; 04's
lstm_sequence and classifier_loss) run with stand-ins for the functions they call, so that one bug costs one
question; 06's and 07's attention_backward tests build their caches with a helper that computes question 1's
weights.
Two ways a submission could use those stand-ins instead of doing the work, both closed:

* *call the stand-in as the answer* of the question it stands in for (01's PyTorch affine layers and softmax
  loss as the answers of questions 1 to 3, 04's whole-sequence stand-in as the answer of question 4): the
  stand-ins are made only by the test cell that needs them (01: ``stand_in_layers`` in question 5's test; 02:
  ``stand_in_step_forward`` and ``stand_in_steps`` in the tests of questions 3 to 5; 04: ``stand_in_sequence``
  in question 5's test; 06 and 07: ``attention_cache`` in question 2's test), so they do not exist while an earlier
  question is tested;
* *ignore the functions the test hands in* and compute the stand-in's result some other way (the setup cell's
  factories, course_lib.rnn, torch autograd): the stand-ins compute a different network in each test (01: every
  affine output times a scale, the scores times a temperature; 02: the step's pre-activation times a scale;
  04: the tanh RNN's pre-activation times a scale),
  with values the hidden test draws at random, so only an answer that calls what it was handed matches.

Every cheat below is graded through the record-mode kernel route of :mod:`test_mistakes` (the sandbox's import
guard: what the sandboxed grader runs) and in ``assert`` mode (what plain ``nbgrader autograde`` and ``python -m
course_lib.check`` run); each must lose its question in both, and only its question; one submission per
assignment with several of them goes through the real sandboxed grader, plain ``nbgrader autograde`` and ``python
-m course_lib.check``, which must agree. :data:`RESIDUAL` holds answers by torch autograd, which
``own_work("torch")`` now fails in every mode (it was enforced in ``assert`` mode only). Before this change
(measured on the previous notebooks, same cheats): 01 scored 13 of 13 in the sandboxed grader and 7 of 13 under
nbgrader with answers of questions 1 to 3 that return the setup cell's stand-ins and of question 5 by torch
autograd (question 4 honest); 04 scored 15 of 15 in both with questions 4 and 5 answered by calling the setup
cell's stand-ins instead of the functions the tests hand in.

Marked slow (kernels, nbgrader round trips).
"""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import lstm
from course_lib.checks import rel_error
from course_lib.gradcheck import numerical_gradient
from course_lib.grading.prepare import bound_names

_TWO_LAYER = '''
def two_layer_loss(params, x, y):
    L = {layers}
    a, c1 = L["affine_forward"](x, params["W1"], params["b1"])
    h = np.tanh(a)
    s, c2 = L["affine_forward"](h, params["W2"], params["b2"])
    loss, ds = L["softmax_loss"](s, y)
    dh, dW2, db2 = L["affine_backward"](ds, c2)
    _, dW1, db1 = L["affine_backward"](dh * (1 - h**2), c1)
    return loss, {{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}}
'''
_SEQUENCE = '''
def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):
    step_forward = {steps}[0]
    N, T, _ = x.shape
    h, caches, h_t, c_t = np.empty((N, T, h0.shape[1])), [], h0, c0
    for t in range(T):
        h_t, c_t, cache = step_forward(x[:, t], h_t, c_t, Wx, Wh, b)
        h[:, t] = h_t
        caches.append(cache)
    return h, caches


def lstm_sequence_backward(dh, caches):
    step_backward = {steps}[1]
    N, T, H = dh.shape
    dxs, dh_next, dc_next = [None] * T, np.zeros((N, H)), np.zeros((N, H))
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        dxs[t], dh_next, dc_next, a, b_, c = step_backward(dh[:, t] + dh_next, dc_next, caches[t])
        dWx, dWh, db = dWx + a, dWh + b_, db + c
    return np.stack(dxs, axis=1), dh_next, dc_next, dWx, dWh, db
'''

CHEATS = {
    "01_feedforward": {
        "forward_is_the_stand_in": {
            "cell": "affine_forward", "zero": "test_affine_forward",
            "source": "def affine_forward(x, W, b):\n"
                      "    return stand_in_layers(1.0, 1.0)['affine_forward'](x, W, b)\n"},
        "backward_is_the_stand_in": {
            "cell": "affine_backward", "zero": "test_affine_backward",
            "source": "def affine_backward(dout, cache):\n"
                      "    return stand_in_layers(1.0, 1.0)['affine_backward'](dout, cache)\n"},
        "softmax_is_the_stand_in": {
            "cell": "softmax_loss", "zero": "test_softmax_loss",
            "source": "def softmax_loss(s, y):\n    return stand_in_layers(1.0, 1.0)['softmax_loss'](s, y)\n"},
        "two_layer_makes_its_own_stand_ins": {
            "cell": "two_layer_loss", "zero": "test_two_layer_loss",
            "source": _TWO_LAYER.format(layers="stand_in_layers(1.0, 1.0)")},
        "two_layer_by_torch_autograd": {
            "cell": "two_layer_loss", "zero": "test_two_layer_loss",
            "source": '''
def two_layer_loss(params, x, y):
    import torch
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    s = torch.tanh(torch.as_tensor(x) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = torch.nn.functional.cross_entropy(s, torch.as_tensor(y))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}
'''},
    },
    "02_rnn": {
        "step_forward_is_the_stand_in": {
            "cell": "rnn_step_forward", "zero": "test_rnn_step_forward",
            "source": "def rnn_step_forward(x, h_prev, Wx, Wh, b):\n"
                      "    return stand_in_step_forward(1.0)(x, h_prev, Wx, Wh, b)\n"},
        "step_backward_is_the_stand_in": {
            "cell": "rnn_step_backward", "zero": "test_rnn_step_backward",
            "source": "def rnn_step_backward(dh, cache):\n    return stand_in_steps(1.0)[1](dh, cache)\n"},
        "step_backward_by_torch_autograd": {
            "cell": "rnn_step_backward", "zero": "test_rnn_step_backward",
            "source": '''
def rnn_step_backward(dh, cache):
    import torch
    x, h_prev, Wx, Wh, h = (torch.tensor(a, requires_grad=True) for a in cache)
    b = torch.zeros(Wh.shape[1], dtype=Wh.dtype, requires_grad=True)
    (x @ Wx + h_prev @ Wh + b).backward(torch.as_tensor(dh) * (1 - h.detach() ** 2))
    return x.grad.numpy(), h_prev.grad.numpy(), Wx.grad.numpy(), Wh.grad.numpy(), b.grad.numpy()
'''},
        "forward_ignores_the_step_it_is_handed": {
            "cell": "rnn_forward", "zero": "test_rnn_forward",
            "source": '''
def rnn_forward(x, h0, Wx, Wh, b):
    h, cache, h_t = np.empty((x.shape[0], x.shape[1], h0.shape[1])), [], h0
    for t in range(x.shape[1]):
        h_prev, h_t = h_t, np.tanh(x[:, t] @ Wx + h_t @ Wh + b)
        h[:, t] = h_t
        cache.append((x[:, t], h_prev, Wx, Wh, h_t))
    return h, cache
'''},
        "backward_ignores_the_step_it_is_handed": {
            "cell": "rnn_backward", "zero": "test_rnn_backward",
            "source": '''
def rnn_backward(dh, cache):
    from course_lib import rnn as _rnn
    grads = _rnn.rnn_backward(dh, cache)
    return grads
'''},
    },
    "04_lstm": {
        "sequence_is_the_sequence_stand_in": {
            "cell": "lstm_sequence", "zero": "test_lstm_sequence",
            "source": "def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):\n"
                      "    return stand_in_sequence(1.0)[0](x, h0, c0, Wx, Wh, b)\n\n\n"
                      + _SEQUENCE.split("\n\n\n")[1].format(steps="(lstm_step_forward, lstm_step_backward)")},
        "sequence_calls_the_setup_stand_ins": {
            "cell": "lstm_sequence", "zero": "test_lstm_sequence",
            "source": _SEQUENCE.format(steps="stand_in_steps(1.0)")},
        "sequence_by_course_lib_rnn": {
            "cell": "lstm_sequence", "zero": "test_lstm_sequence",
            "source": '''
from course_lib import rnn as _rnn


def lstm_sequence_forward(x, h0, c0, Wx, Wh, b):
    H = h0.shape[1]
    s, _ = _rnn.rnn_forward(x, np.concatenate([h0, c0], axis=1), Wx[:, :2 * H], Wh.reshape(2 * H, 2 * H),
                            b[:2 * H])
    return s[:, :, :H], [stand_in_steps(1.0)[0](x[:, t], h0, c0, Wx, Wh, b)[2] for t in range(x.shape[1])]
''' + _SEQUENCE.split("\n\n\n")[1].format(steps="stand_in_steps(1.0)")},
        "classifier_calls_the_sequence_stand_ins": {
            "cell": "classifier_loss", "zero": "test_classifier_loss",
            "source": '''
def classifier_loss(params, x, y):
    sequence_forward, sequence_backward = stand_in_sequence(1.0)
    N, T, _ = x.shape
    zeros = np.zeros((N, params["Wh"].shape[0]))
    h, caches = sequence_forward(x, zeros, zeros, params["Wx"], params["Wh"], params["b"])
    scores = h[:, -1] @ params["Wy"] + params["by"]
    loss, dscores = softmax_loss(scores, y)
    dh = np.zeros_like(h)
    dh[:, -1] = dscores @ params["Wy"].T
    _, _, _, dWx, dWh, db = sequence_backward(dh, caches)
    return loss, {"Wx": dWx, "Wh": dWh, "b": db, "Wy": h[:, -1].T @ dscores, "by": dscores.sum(axis=0)}
'''},
    },
    "06_seq2seq": {
        "attention_forward_is_the_cache_helper": {
            "cell": "attention_forward", "zero": "test_attention_forward",
            "source": "def attention_forward(s, h, mask, Wq, Wk, v):\n"
                      "    cache = attention_cache(s, h, mask, Wq, Wk, v)\n"
                      "    return np.einsum('ns,nsh->nh', cache[7], h), cache[7], cache\n"},
    },
    "07_after_attention": {
        "attention_forward_is_the_cache_helper": {
            "cell": "attention_forward", "zero": "test_attention_forward",
            "source": "def attention_forward(q, k, v, causal):\n"
                      "    cache = attention_cache(q, k, v, causal)\n"
                      "    return cache[3] @ v, cache\n"},
    },
}

# Answers written with torch autograd: the hidden tests' own_work("torch") hands the calls it saw to a check
# (judged by the grader's parent in the sandbox), so such an answer fails in both modes.
RESIDUAL = {
    "01_feedforward": {
        "backward_copies_the_torch_stand_in": {
            "cell": "affine_backward", "zero": "test_affine_backward",
            "source": '''
def affine_backward(dout, cache):
    import torch
    x, W = (torch.tensor(a, requires_grad=True) for a in cache)
    b = torch.zeros(W.shape[1], dtype=W.dtype, requires_grad=True)
    (x @ W + b).backward(torch.as_tensor(dout))
    return x.grad.numpy(), W.grad.numpy(), b.grad.numpy()
'''},
    },
}
CASES = [(a, name) for a, cheats in CHEATS.items() for name in cheats]
CASES += [(a, name) for a, cheats in RESIDUAL.items() for name in cheats]


@pytest.fixture(scope="module")
def graders():
    """assignment -> (record-mode Assignment of test_mistakes, assert-mode kernel with setup and solutions)."""
    from test_mistakes import Assignment, Kernel, failed, is_solution

    opened: dict[str, tuple] = {}

    def get(name: str):
        if name not in opened:
            a = Assignment(name)
            assert not any(a.grade().values()), f"{name}: the solution itself fails"
            kernel = Kernel("assert")
            for cell in a.setup + [c for c in a.nb.cells if is_solution(c)]:
                assert not failed(kernel.run(cell.source)), cell.source[:200]
            opened[name] = (a, kernel)
        return opened[name]

    yield get
    for a, kernel in opened.values():
        kernel.close()
        a.close()


def assert_mode_failures(a, kernel, cell: str, source: str) -> set[str]:
    """Graded cells that fail in assert mode (an error or stderr) with ``cell`` replaced by ``source``."""
    from test_mistakes import failed, grade_id

    kernel.run(source)
    try:
        return {grade_id(c) for c in a.tests if failed(kernel.run(c.source))}
    finally:
        assert not failed(kernel.run(a.solutions[cell]))


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "name"), CASES)
def test_a_stand_in_is_no_answer(graders, assignment, name):
    cheat = {**CHEATS.get(assignment, {}), **RESIDUAL.get(assignment, {})}[name]
    a, kernel = graders(assignment)
    # the kernels are reused: forget what earlier runs of the test cells defined (the sandbox runs each once)
    given = set().union(*(bound_names(c.source) for c in a.setup), *(bound_names(v) for v in a.solutions.values()))
    made_by_tests = sorted(set().union(*(bound_names(c.source) for c in a.tests)) - given)
    for k in (a.student, kernel):
        k.run(f"for _name in {made_by_tests!r}:\n    globals().pop(_name, None)")
    graded = a.grade_with(cheat["cell"], cheat["source"])
    failing = {gid for gid, problems in graded.items() if problems}
    assert failing == {cheat["zero"]}, f"the sandbox's route fails {sorted(failing)}, not only {cheat['zero']}"
    assert assert_mode_failures(a, kernel, cheat["cell"], cheat["source"]) == {cheat["zero"]}


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_scaled_lstm_stand_in_has_consistent_gradients(scale):
    """04's stand-in of any scale: its backward pass is the gradient of its forward pass (float64)."""
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 3, 3, 2
    args = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)), c0=rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, 4 * H)), Wh=0.5 * rng.standard_normal((H, 4 * H)),
                b=rng.standard_normal(4 * H))
    h, cache = lstm.stand_in_sequence_forward(**args, scale=scale)
    dh = rng.standard_normal(h.shape)
    grads = lstm.stand_in_sequence_backward(dh, cache)
    for k, name in enumerate(["x", "h0", "c0", "Wx", "Wh", "b"]):
        num = numerical_gradient(lambda: lstm.stand_in_sequence_forward(**args, scale=scale)[0], args[name], dh)
        assert rel_error(grads[k], num) < 1e-7, name
    unscaled = lstm.stand_in_sequence_forward(**args)[0]
    assert (scale == 1.0) == bool(np.allclose(h, unscaled))


# one submission per assignment: the solution with these cheats in place of its answers (one per question)
SUBMISSIONS = {"01_feedforward": ["forward_is_the_stand_in", "backward_is_the_stand_in", "softmax_is_the_stand_in",
                                  "two_layer_by_torch_autograd"],
               "02_rnn": ["step_forward_is_the_stand_in", "step_backward_is_the_stand_in",
                          "forward_ignores_the_step_it_is_handed"],
               "04_lstm": ["sequence_calls_the_setup_stand_ins", "classifier_calls_the_sequence_stand_ins"]}


def cheating_submission(assignment: str):
    """The source notebook with the answers of :data:`SUBMISSIONS` in place of its solution cells."""
    import nbformat
    from test_mistakes import SOURCE, grade_id

    nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {CHEATS[assignment][n]["cell"]: CHEATS[assignment][n]["source"] for n in SUBMISSIONS[assignment]}
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers.pop(grade_id(cell))
    assert not answers, answers
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(SUBMISSIONS))
def test_stand_in_cheats_score_zero_in_the_three_graders(tmp_path, assignment):
    """The sandboxed grader, plain ``nbgrader autograde`` and ``python -m course_lib.check`` give the cheated
    questions 0 and the others full marks."""
    import re

    from grading_helpers import grade_three_ways

    from course_lib.grading import sandbox

    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here ({why}); CI installs bubblewrap")
    nb = cheating_submission(assignment)
    points = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}
    zero = {CHEATS[assignment][n]["zero"] for n in SUBMISSIONS[assignment]}
    expected = {g: 0 if g in zero else p for g, p in points.items()}

    graders = grade_three_ways(tmp_path, assignment, "cheater", nb, tmp_path / f"{assignment}.ipynb")
    nbgrader, graded, result = graders["nbgrader"], graders["sandbox"], graders["check"]
    checked = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(test_\w+)\s+\S+ pt\s+(passed|FAILED)", line)
        if match:
            checked[match.group(1)] = points[match.group(1)] if match.group(2) == "passed" else 0
    assert {g: graded[g] for g in points} == expected, {"sandbox": graded, "expected": expected}
    assert {g: nbgrader[g] for g in points} == checked == expected, \
        {"nbgrader": nbgrader, "check": checked, "expected": expected}
