"""course_lib: the companion package of "Recurrent Neural Networks: from scratch to IMDb sentiment".

One module per chapter topic; each chapter of the book imports what it explains from here, so the page and
the tested code cannot drift apart.

==================  ====================================================================
module              what it holds
==================  ====================================================================
``gradcheck``       centered numerical gradients and the relative error used by every check
``feedforward``     affine layer, activations, losses and a small MLP trained with SGD (numpy)
``plotting``        figure helpers shared by the chapters (matplotlib)
``testing``         helpers for graded assignments (e.g. proving a reference was not called)
``grading``         parallel, sandboxed autograding of a class into the nbgrader gradebook
==================  ====================================================================

Dimension legend used throughout: N batch, T time, D input features, H hidden units, C classes.
"""

__version__ = "0.1.0"
