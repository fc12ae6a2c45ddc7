"""Writes a graded notebook and its scores, in the parent, with nbgrader's own post-execution preprocessors.

After :func:`course_lib.grading.verdict.apply`, the notebook goes through the same ``autograde_preprocessors``
as in ``nbgrader autograde`` (IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
AssignLatePenalties, CheckCellMetadata), configured by the course's nbgrader_config.py. So the gradebook's
Grade and Comment rows, late penalties and the ``autograded/<student>/<assignment>/`` folder are what nbgrader
would have written; ``nbgrader export``, ``generate_feedback`` and the formgrader work on them as usual.
"""

from __future__ import annotations

import os

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades


def save(nb: NotebookNode, config, db_url: str, assignment: str, student: str, name: str, dest: str) -> None:
    resources = {"unique_key": name, "output_files_dir": f"{name}_files",
                 "nbgrader": {"student": student, "assignment": assignment, "notebook": name, "db_url": db_url}}
    for cls in (IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties,
                CheckCellMetadata):
        nb, resources = cls(config=config)(nb, resources)
    nbformat.write(nb, os.path.join(dest, f"{name}.ipynb"))


def set_permissions(dest: str, permissions: int = 0o444) -> None:
    """nbgrader's default permissions for autograded files (read-only)."""
    for dirpath, _, filenames in os.walk(dest):
        for filename in filenames:
            os.chmod(os.path.join(dirpath, filename), permissions)


def scores(db_url: str, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (score, max_score) of one submission, as the gradebook now holds them."""
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(assignment, student)
        return {g.name: (float(g.score), float(g.max_score)) for nb in submission.notebooks for g in nb.grades}
