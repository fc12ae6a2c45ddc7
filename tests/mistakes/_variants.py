"""Helper of the catalogues: a wrong answer written as the solution cell with one mistake put in.

Not a catalogue itself (``tests/test_mistakes.py`` reads only ``a*.py``). ``mistake_maker("04_lstm")`` returns a
function that builds one catalogue entry from (old, new) replacements of the source notebook's solution cell,
and fails loudly when the solution no longer contains a snippet, so a catalogue follows its notebook and every
entry differs from the right answer by exactly what its name says.
"""

from pathlib import Path

import nbformat

SOURCE = Path(__file__).resolve().parents[2] / "assignments" / "source"


def mistake_maker(assignment: str):
    nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = {c.metadata.nbgrader.grade_id: c.source for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}

    def variant(cell: str, replacements) -> str:
        source = "\n".join(line for line in solutions[cell].splitlines()
                           if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
        for old, new in replacements:
            assert source.count(old) == 1, f"{assignment}/{cell}: {old!r} is not in the solution exactly once"
            source = source.replace(old, new)
        return source

    def mistake(name, cell, replacements, caught_by, message, visible=True) -> dict:
        return {"name": name, "cell": cell, "source": variant(cell, replacements), "caught_by": caught_by,
                "visible": visible, "message": message}

    mistake.variant = variant  # the solution cell with replacements, for right answers written another way
    return mistake
