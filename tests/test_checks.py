"""course_lib.checks: encoding as plain data, judging, and the three modes of a test cell."""

import json

import numpy as np
import pytest

from course_lib import checks
from course_lib.checks import Test, decode, encode, judge, judge_cell


@pytest.mark.parametrize("value", [None, True, "text", 3, -2.5, float("inf"), [1, 2.0, "a"], (1, (2, 3)),
                                   {"a": 1, "b": [None]}, np.arange(6, dtype=np.int32).reshape(2, 3),
                                   np.float64(1.5), np.array([[1.0, np.nan]])])
def test_encode_decode_round_trip(value):
    back = decode(json.loads(json.dumps(encode(value), allow_nan=False)))
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        np.testing.assert_array_equal(back, value)
        assert back.dtype == np.asarray(value).dtype
    else:
        assert back == value or (isinstance(value, float) and np.isnan(value))


def test_torch_tensors_and_unknown_objects():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(decode(encode(torch.ones(2, 3))), np.ones((2, 3), dtype=np.float32))
    assert repr(decode(encode(object()))) == "<object>"
    assert judge({"kind": "close"}, decode(encode(object())), 1.0).startswith("is a object")


@pytest.mark.parametrize("bad", [{"t": "nd", "dtype": "object", "shape": [1], "b64": ""},
                                 {"t": "nd", "dtype": "float64", "shape": [2], "b64": "AAAA"},
                                 {"t": "pickle", "v": "x"}, [1, 2]])
def test_decode_refuses_what_is_not_plain_data(bad):
    with pytest.raises(checks.CheckError):
        decode(bad)


def test_judge_diagnoses_common_mistakes_without_showing_the_answer():
    e = np.arange(1.0, 7.0).reshape(2, 3)
    close = {"kind": "close", "tol": 1e-7}
    assert judge(close, e.copy(), e) is None
    assert "transposed" in judge(close, e.T, e)
    assert "0.5 times" in judge(close, e / 2, e)
    assert "times the expected" not in judge(close, 1.0, 2.0)
    assert "opposite sign" in judge(close, -e, e)
    assert "nan or inf" in judge(close, np.where(e > 5, np.inf, e), e)
    assert "None" in judge(close, None, e)
    assert "dtype int64" in judge(close, e.astype(np.int64), e)
    assert judge(close, e + 1e-12, e) is None
    assert judge(close, e, e, {"did you forget the bias?": e}) is None  # a correct answer is never a mistake
    wrong = e.copy()
    wrong[:, 2] += 1
    problem = judge(close, wrong, e, {"did you forget the bias?": wrong})
    assert problem == "did you forget the bias?"
    problem = judge(close, wrong, e)
    assert "axis 1 at positions 2" in problem and "3.0" not in problem and "6" not in problem
    assert judge({"kind": "equal"}, [1, 2], [1, 2]) is None and judge({"kind": "equal"}, [2, 1], [1, 2])
    rule = {"kind": "rule", "rule": "decreasing", "params": {"factor": 0.5}}
    assert judge(rule, [4.0, 1.0], None) is None and "does not decrease" in judge(rule, [4.0, 3.0], None)


def test_complex_values_never_pass_a_real_check():
    """astype(float64) drops the imaginary part: a complex result must be refused, not compared as its real part."""
    e = np.arange(1.0, 7.0).reshape(2, 3)
    close, equal = {"kind": "close", "tol": 1e-7}, {"kind": "equal"}
    for value in (e + 1j, e.astype(np.complex128), np.complex128(2.0), [e + 1j, e]):
        expected = [e, e] if isinstance(value, list) else (2.0 if np.ndim(value) == 0 else e)
        assert "complex" in judge(close, decode(encode(value)), expected)
    assert "complex" in judge(equal, decode(encode(np.array([1, 2], dtype=np.complex64))), np.array([1, 2]))
    assert "complex" in judge(equal, decode(encode((np.complex128(3.0),))), (3,))
    assert "complex" in judge({"kind": "rule", "rule": "finite", "params": {}}, decode(encode(e + 0j)), None)
    # a complex expected value is compared as complex, imaginary part included
    assert judge(close, e + 1j, e + 1j) is None and judge(equal, e + 1j, e + 1j) is None
    assert judge(close, e + 2j, e + 1j) is not None and judge(close, e + 0j, e + 1j) is not None
    assert checks.rel_error(1 + 1j, 1 - 1j) > 0.5


def test_assert_mode_raises_with_the_message(monkeypatch):
    monkeypatch.setenv("RNN_COURSE_CHECKS", "assert")
    t = Test("demo")
    t.close("out", np.ones(3), lambda: np.ones(3))
    with pytest.raises(AssertionError, match=r"test demo, the output: out2 is 2 times"):
        t.close("out2", 2 * np.ones(3), np.ones(3), what="the output")
    with pytest.raises(ValueError, match="twice"):
        t.close("out", np.ones(3), np.ones(3))


def _published(monkeypatch):
    sent = []
    monkeypatch.setattr(Test, "_publish", staticmethod(lambda record: sent.append(json.loads(json.dumps(record)))))
    return sent


def test_record_mode_never_evaluates_the_reference(monkeypatch):
    monkeypatch.setenv("RNN_COURSE_CHECKS", "record")
    sent = _published(monkeypatch)

    def reference():
        raise AssertionError("the reference must not run in the student's kernel")

    t = Test("demo")
    t.close("out", np.zeros(2), reference, mistakes={"m": reference})
    assert sent == [{"test": "demo", "key": "out", "value": encode(np.zeros(2))}]


def test_reference_and_student_records_are_judged_from_data(monkeypatch):
    sent = _published(monkeypatch)
    monkeypatch.setenv("RNN_COURSE_CHECKS", "reference")
    t = Test("q1", hidden=True)
    t.close("h", np.ones(4), None, mistakes={"did you use relu?": np.zeros(4)})
    t.rule("loss", [3.0, 1.0], "decreasing", factor=0.5)
    reference, sent[:] = list(sent), []
    monkeypatch.setenv("RNN_COURSE_CHECKS", "record")
    t = Test("q1", hidden=True)
    t.close("h", np.ones(4), None)
    t.rule("loss", [3.0, 1.0], "decreasing", factor=0.5)
    assert judge_cell(reference, sent) == []
    # a student who hands back other values, twice, or nothing at all
    wrong = [{"test": "q1", "key": "h", "value": encode(np.zeros(4))}]
    assert judge_cell(reference, wrong) == ["hidden test q1: h did you use relu?",
                                            "hidden test q1: loss was never checked: the test stopped "
                                            "before it (an error above, or the cell did not run to its end)"]
    assert "more than once" in judge_cell(reference, sent + sent[:1])[0]
    garbage = [{"test": "q1", "key": "h", "value": {"t": "nd", "dtype": "object"}}, "junk", None]
    assert "could not be read back" in judge_cell(reference, garbage)[0]


def test_hidden_inputs_follow_the_instructor_secret(monkeypatch):
    monkeypatch.delenv("RNN_COURSE_GRADING_KEY", raising=False)
    monkeypatch.delenv("RNN_COURSE_GRADING_SECRET", raising=False)
    fixed = Test("q", hidden=True).rng.standard_normal(3)
    np.testing.assert_array_equal(fixed, np.random.default_rng(0).standard_normal(3))
    monkeypatch.setenv("RNN_COURSE_GRADING_SECRET", "class of 2026")
    secret = Test("q", hidden=True).rng.standard_normal(3)
    assert not np.allclose(secret, fixed)
    np.testing.assert_array_equal(Test("q").rng.standard_normal(3), fixed)  # visible tests keep fixed inputs
    monkeypatch.setenv("RNN_COURSE_GRADING_STUDENT", "alice")
    assert not np.allclose(Test("q", hidden=True).rng.standard_normal(3), secret)
    monkeypatch.delenv("RNN_COURSE_GRADING_SECRET")
    monkeypatch.setenv("RNN_COURSE_GRADING_KEY", checks.grading_key("class of 2026", "alice"))
    np.testing.assert_array_equal(Test("q", hidden=True).rng.standard_normal(3),
                                  Test("q", hidden=True).rng.standard_normal(3))


def test_reference_modules_are_imported_on_first_use(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "course_lib.gru", raising=False)
    ref = checks.reference("course_lib.gru")
    assert "course_lib.gru" not in sys.modules
    assert callable(ref.gru_step_forward) and "course_lib.gru" in sys.modules


def test_own_work_of_the_whole_package_does_not_flag_itself(monkeypatch):
    monkeypatch.setenv("RNN_COURSE_CHECKS", "assert")
    t = Test("own")
    with t.own_work("course_lib"):
        np.ones(3).sum()
    from course_lib import feedforward

    with pytest.raises(AssertionError, match="reference implementation"):
        with t.own_work("course_lib"):
            feedforward.affine_forward(np.ones((1, 2)), np.ones((2, 2)), np.ones(2))


def test_a_message_says_its_key_once():
    from course_lib.checks import message

    assert message("t", "db", {"what": "db"}, "db has the right shape but is 1/N of it") == \
        "test t: db has the right shape but is 1/N of it"
    assert message("t", "dWx", {"what": "dWx of one step"}, "dWx is the transpose") == \
        "test t, dWx of one step: dWx is the transpose"
    assert message("t", "loss", {"what": "the mean loss", "hidden": True}, "the loss is N times too large") == \
        "hidden test t, the mean loss: the loss is N times too large"
    assert message("t", "h", {"what": "the states"}, "h[:, t] holds the state before step t") == \
        "test t, the states: h[:, t] holds the state before step t"
    # a diagnosis that does not open with the key gets it as its subject
    assert message("t", "dx", {"what": "dx of one step"}, "differs from the expected values") == \
        "test t, dx of one step: dx differs from the expected values"
    assert message("t", "c", {"what": "the cell state"}, "is o * c: multiply tanh(c)") == \
        "test t, the cell state: c is o * c: multiply tanh(c)"
    assert message("t", "db", {"what": "db"}, "dbx is off") == "test t: db dbx is off"


def test_own_work_is_a_check_judged_like_any_other():
    """The calls the watcher saw are a value: none passes, any fails with the same message in every mode."""
    spec = {"kind": "own_work", "what": "the answer's own work (no calls into torch)"}
    assert checks.judge(spec, [], []) is None
    problem = checks.judge(spec, ["torch.autograd.backward"], [])
    assert problem == checks.CALLS_REFERENCE + "torch.autograd.backward"
    assert checks.judge(spec, "forged", []) is not None  # not a list: fails
    text = checks.message("softmax_loss_hidden", "own_work_1", spec, problem)
    assert "own_work_1" not in text and text.startswith("test softmax_loss_hidden, the answer's own work")
