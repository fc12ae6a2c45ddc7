"""nbgrader configuration of the course (the course directory is this folder).

Standard nbgrader layout: ``source/<assignment>/<assignment>.ipynb`` is committed; ``release/``,
``submitted/``, ``autograded/``, ``feedback/``, ``exchange/`` and ``gradebook.db`` are generated. Run the
nbgrader commands from this folder (see the README's instructor section).
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.root = HERE
# The gradebook: SQLite in this folder by default; point NBGRADER_DB_URL at PostgreSQL for a big class.
c.CourseDirectory.db_url = os.environ.get("NBGRADER_DB_URL", "sqlite:///" + os.path.join(HERE, "gradebook.db"))

# A local exchange folder, so release/fetch/submit/collect work on one machine out of the box.
# On a shared JupyterHub, set NBGRADER_EXCHANGE to the hub's exchange (e.g. /srv/nbgrader/exchange).
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", os.path.join(HERE, "exchange"))

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: every cell gets 2 minutes (training cells are shortened under NBGRADER_EXECUTION).
c.Execute.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.kernel_name = "python3"

# Feedback never shows hidden tests: nbgrader's default feedback renders the autograded notebook, hidden
# tests included. HideHiddenTests removes them, and the traceback lines that quote them.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from course_lib.grading.feedback import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# Autograding warns only about locked cells a student changed: nbgrader's OverwriteCells compares each
# released test cell with the checksum of its source version (hidden tests included) and so reported every
# test cell of an untouched notebook as changed.
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteKernelspec  # noqa: E402

from course_lib.grading.overwrite import OverwriteReleasedCells  # noqa: E402

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteReleasedCells,
                                      CheckCellMetadata]
