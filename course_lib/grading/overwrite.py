"""nbgrader's ``OverwriteCells``, warning only about locked cells that a student actually changed.

nbgrader stores in the gradebook the checksum of each test cell *with* its hidden tests, and releases the
cell without them. When it autogrades, ``OverwriteCells`` compares the submitted cell (the released text) with
that checksum, so every test cell that holds hidden tests is reported as changed ("Attribute 'checksum' for
cell test_affine_forward has changed!"), five times for an untouched notebook of assignment 01, and a real
edit cannot be told from the noise. :class:`OverwriteReleasedCells` first recognises a cell that still reads
as it was released (the source cell with its hidden region removed, as ``generate_assignment`` removes it)
and restores the source version silently; any other difference is reported and overwritten as before.

``assignments/nbgrader_config.py`` puts it in place of ``OverwriteCells`` for ``nbgrader autograde``, and the
sandboxed grader (:mod:`course_lib.grading.prepare`) uses it too.
"""

from __future__ import annotations

from nbformat.v4 import new_code_cell
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells


def released_source(source: str) -> str:
    """The text of a source cell as ``generate_assignment`` releases it: its hidden-test region removed."""
    cell = new_code_cell(source)
    ClearHiddenTests()._remove_hidden_test_region(cell)
    return cell.source


class OverwriteReleasedCells(OverwriteCells):
    """``OverwriteCells`` without the spurious checksum warning for released test cells (see the module)."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and cell.cell_type == "code":
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None  # the parent class reports it
            if (source_cell is not None and source_cell.locked and source_cell.cell_type == "code"
                    and cell.source == released_source(source_cell.source)):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)


__all__ = ["OverwriteReleasedCells", "released_source"]
