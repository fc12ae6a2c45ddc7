import numpy as np
import pytest

from course_lib.claims import ClaimError, claim, claims_made


def test_claim_passes_and_is_recorded():
    claim(np.float64(0.95) > 0.9, "the model learns the task")
    assert "the model learns the task" in claims_made()


def test_claim_fails_with_the_sentence_and_evidence():
    with pytest.raises(ClaimError) as error:
        claim(np.array([0.9, 0.2]).min() > 0.5, "every seed learns lag 40", accuracy=np.array([0.9, 0.2]))
    message = str(error.value)
    assert "every seed learns lag 40" in message and "accuracy = [0.9 0.2]" in message


def test_claim_needs_a_sentence():
    with pytest.raises(TypeError):
        claim(True, "")


def test_markdown_table_formats_floats_and_escapes_bars():
    from course_lib.claims import markdown_table

    table = markdown_table(["model", "accuracy"], [["LSTM", np.float64(0.987)], ["a|b", 3]])
    assert table.splitlines() == ["| model | accuracy |", "|---|---|", "| LSTM | 0.99 |", "| a\\|b | 3 |"]


def test_markdown_table_rejects_ragged_rows():
    from course_lib.claims import markdown_table

    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a", "b"], [[1]])


def test_glue_hands_numpy_scalars_to_myst_nb_as_python_numbers(monkeypatch):
    import myst_nb

    from course_lib.claims import glue

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: (value, display)}))
    assert glue("acc", np.float64(0.975)) is None
    glue("n", np.int64(3))
    glue("text", "kept")
    assert seen == {"acc": (0.975, False), "n": (3, False), "text": ("kept", False)}
    assert type(seen["acc"][0]) is float and format(seen["acc"][0], ".2f") == "0.97"
