"""Tests for course_lib/plotting.py: ``show_source`` renders docstrings as Markdown, code without them."""

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import course_lib
from course_lib import feedforward as ff
from course_lib import rnn
from course_lib.plotting import rst_to_markdown, show_source

RAW_REST = re.compile(r":(?:math|func|class|meth|mod|data|attr):`|^\s*\.\. [a-z-]+::|``|\\odot", re.M)


def _outside_math_and_fences(md: str) -> str:
    """``md`` without its ``$...$`` / ``$$...$$`` math and fenced blocks (where reST-looking text is fine)."""
    md = re.sub(r"```.*?```", "", md, flags=re.S)
    md = re.sub(r"\$\$.*?\$\$", "", md, flags=re.S)
    return re.sub(r"(?<!\\)\$[^$]+(?<!\\)\$", "", md)


def test_inline_roles_become_markdown():
    md = rst_to_markdown("Scale :math:`x \\odot y` by ``lr``, see :func:`sgd_step` and :class:`~a.b.MLP`.")
    assert md == "Scale $x \\odot y$ by `lr`, see `sgd_step` and `MLP`."


def test_math_block_becomes_display_math_one_block_per_equation():
    doc = "Two equations.\n\n.. math::\n\n    a = b\n    + c\n\n    d = e\n\nAfter."
    assert rst_to_markdown(doc) == "Two equations.\n\n$$\na = b\n+ c\n$$\n\n$$\nd = e\n$$\n\nAfter."


def test_args_and_returns_become_labelled_lists():
    doc = """Summary.

    Args:
        x: input, ``(N, D)``,
            continued on a second line.
        W, b: weights ``(D, M)`` and bias ``(M,)``.

    Returns:
        out ``(N, M)`` and a cache.
    """
    md = rst_to_markdown(doc)
    assert "**Args**\n\n- `x`: input, `(N, D)`, continued on a second line.\n- `W, b`: weights" in md
    assert md.endswith("**Returns**\n\nout `(N, M)` and a cache.")  # one unnamed item: a sentence


def test_literal_block_becomes_a_fence_and_dollars_in_text_are_escaped():
    md = rst_to_markdown("Costs $5.\n\nExample::\n\n    >>> f(1)\n    2\n")
    assert md == "Costs \\$5.\n\nExample:\n\n```python\n>>> f(1)\n2\n```"


def test_inline_code_across_lines_and_with_backticks():
    md = rst_to_markdown("Glue with ``{glue:text}`name``` or ``a\n    b``.")
    assert md == "Glue with `` {glue:text}`name` `` or `a\nb`."


def test_show_source_renders_docstring_and_strips_it_from_the_code():
    listing = show_source(rnn.rnn_step_forward)
    md = listing._repr_markdown_()
    assert md.startswith("> One time step of a tanh RNN.\n>\n")  # the docstring, as a block quote
    assert "> $$\n> h = \\tanh(x W_x + h_{\\mathrm{prev}} W_h + b)\n> $$" in md
    assert "> - `Wx`: input-to-hidden weights, `(D, H)`." in md
    assert listing.name == "rnn_step_forward"
    assert '"""' not in listing.code and "One time step" not in listing.code
    assert "\n\n```python\ndef rnn_step_forward(" in md
    # the code that remains is the function, runnable: same body as the source without the docstring
    fn = ast.parse(listing.code).body[0]
    original = ast.parse(inspect.getsource(rnn.rnn_step_forward)).body[0]
    assert ast.dump(fn.body[0]) == ast.dump(original.body[1])
    assert repr(listing) == listing.code


def test_show_source_dedents_methods_and_keeps_decorators():
    listing = show_source(ff.MLP.create)
    assert listing.code.startswith("@classmethod\ndef create(")
    assert "Glorot" not in listing.code and "Glorot" in listing.doc


def test_show_source_of_a_class_keeps_one_line_of_each_method_docstring():
    listing = show_source(ff.MLP)
    tree = ast.parse(listing.code)
    assert not ast.get_docstring(tree.body[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            assert ast.get_docstring(node) is None, node.name
    assert "    # " in listing.code  # the methods' docstrings shrank to comments


def _course_lib_objects():
    for info in pkgutil.iter_modules(course_lib.__path__, "course_lib."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__ and obj.__doc__:
                yield obj


@pytest.mark.parametrize("module", ["feedforward", "rnn", "lstm", "gru", "gradients", "seq2seq", "text", "train"])
def test_no_raw_rest_left_in_any_rendered_docstring(module):
    mod = importlib.import_module(f"course_lib.{module}")
    objects = [o for o in _course_lib_objects() if o.__module__ == mod.__name__]
    assert objects
    for obj in objects:
        listing = show_source(obj)
        assert not RAW_REST.search(_outside_math_and_fences(listing.doc)), obj.__qualname__
        ast.parse(listing.code)  # still valid Python


def _no_docstring(x):
    return x + 1


def test_show_source_without_a_docstring_is_the_code_alone():
    assert show_source(_no_docstring)._repr_markdown_() == "```python\ndef _no_docstring(x):\n    return x + 1\n```\n"


def test_show_source_can_leave_the_docstring_out():
    listing = show_source(rnn.rnn_step_forward, doc=False)
    assert listing.doc == ""
    assert listing._repr_markdown_().startswith("```python\ndef rnn_step_forward(")
    assert listing.code == show_source(rnn.rnn_step_forward).code
