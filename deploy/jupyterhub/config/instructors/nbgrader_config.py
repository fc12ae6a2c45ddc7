"""nbgrader settings of an instructor's server: the course directory is ``~/rnn-course``.

The instructor copies the course there once (README, "Teaching on a JupyterHub"); its own
``nbgrader_config.py`` (the gradebook, time limits, feedback without hidden tests) is loaded from here, so
the formgrader, which runs in the instructor's server with the home folder as its working directory, uses
the same settings as the commands run inside the course directory.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

course = os.path.expanduser("~/rnn-course")
c.CourseDirectory.root = course
if os.path.isfile(os.path.join(course, "nbgrader_config.py")):
    load_subconfig(os.path.join(course, "nbgrader_config.py"))  # noqa: F821 (provided by traitlets)
