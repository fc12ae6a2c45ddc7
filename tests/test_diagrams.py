"""Tests of course_lib.diagrams: every pattern draws its inputs, states and outputs; bad arguments fail."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib import diagrams  # noqa: E402


def box_labels(ax):
    """The labels of the boxes drawn on ``ax`` (text with a bounding box), in drawing order."""
    return [t.get_text() for t in ax.texts if t.get_bbox_patch() is not None]


@pytest.mark.parametrize("kind", list(diagrams.IO_PATTERNS))
def test_each_pattern_draws_one_box_per_input_state_and_output(kind):
    spec = diagrams.IO_PATTERNS[kind]
    fig, ax = plt.subplots()
    assert diagrams.draw_io_pattern(ax, kind) is ax
    labels = box_labels(ax)
    assert labels.count("$x$") == len(spec["inputs"])
    assert labels.count("$h$") == spec["steps"]
    assert labels.count("$y$") == len(spec["outputs"])
    assert kind in ax.get_title()
    plt.close(fig)


def test_the_four_patterns_are_the_taxonomy_of_the_rnn_chapter():
    specs = diagrams.IO_PATTERNS
    assert len(specs["many-to-one"]["outputs"]) == 1 < len(specs["many-to-one"]["inputs"])
    assert len(specs["one-to-many"]["inputs"]) == 1 < len(specs["one-to-many"]["outputs"])
    aligned = specs["aligned many-to-many"]
    assert aligned["inputs"] == aligned["outputs"] == list(range(aligned["steps"]))
    unaligned = specs["unaligned many-to-many"]
    assert max(unaligned["inputs"]) < min(unaligned["outputs"]), "a decoder starts after the encoder has read"
    fig, axes = plt.subplots(1, 4)
    diagrams.draw_io_taxonomy(axes)
    assert [ax.get_title().split("\n")[0] for ax in axes] == list(specs)
    plt.close(fig)


def test_bad_arguments_are_refused():
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="unknown pattern"):
        diagrams.draw_io_pattern(axes[0], "many-to-two")
    with pytest.raises(ValueError, match="needs 4 Axes"):
        diagrams.draw_io_taxonomy(axes)
    plt.close(fig)


@pytest.mark.parametrize("backward", [False, True])
def test_the_unrolled_network_has_T_steps(backward):
    fig, ax = plt.subplots()
    diagrams.draw_unrolled(ax, T=3, backward=backward)
    labels = box_labels(ax)
    assert [f"$x_{t}$" in labels for t in (1, 2, 3, 4)] == [True, True, True, False]
    assert ("$h_t$" in labels) is not backward, "the folded cell is drawn on the forward figure only"
    assert sum(t.get_text().startswith("$L_") for t in ax.texts) == (3 if backward else 0)
    plt.close(fig)
