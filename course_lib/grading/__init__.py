"""Autograding a whole class: parallel, sandboxed, and hard to fool (threat model below).

``python -m course_lib.grading autograde ASSIGNMENT`` (in the nbgrader course directory) grades every
submission into the standard nbgrader gradebook, like ``nbgrader autograde``, but

* in parallel (``--workers``, default: one per core), with a progress bar;
* each submission in a bubblewrap sandbox (:mod:`.sandbox`): no network, a user namespace of its own, a
  filesystem with only its working copy, size-bounded tmpfs, an unprivileged uid, CPU/wall/memory/process/
  output/file-size limits per process and, where the host allows cgroups, CPU/RAM/process limits per
  submission (:mod:`.limits`);
* with verdicts the student's code cannot forge by patching the notebook machinery (:mod:`.harness`).

Modules, in the order a submission meets them: :mod:`.prepare` (trusted, with the gradebook: nbgrader's
sanitizing plus metadata reset and restoration of deleted tests), :mod:`.sandbox` and :mod:`.runner` (the only
untrusted execution), :mod:`.harness` (inside the kernel), :mod:`.verdict` (trusted: checks the signed
verdicts), :mod:`.scoring` (trusted: nbgrader's scoring preprocessors write the gradebook), :mod:`.summary`,
:mod:`.similarity` (trusted: near-copies for review, no score). :mod:`.pool` runs the pool (and holds
:func:`autograde`); :mod:`.feedback` is nbgrader's ``generate_feedback`` preprocessor.

Threat model
------------
The adversary is a student who submits any notebook (any code, any metadata, any bytes) and knows this
module's source. The instructor's machine, the gradebook and the other submissions are trusted; the grader's
own code (venv, course_lib) is read-only to the student.

*Confinement (holds against any code).* Student code runs only in the sandbox: it cannot reach the network
(not even 127.0.0.1 of the host), cannot see or change the course directory, the gradebook, the hidden tests
on disk or other submissions, and is stopped by the limits. It runs in a user namespace of its own (made by
the trusted launcher when the grader is root, by bwrap otherwise; no namespace can be nested inside), with a
new session keyring: its user, user-session, persistent and session keyrings are new, unreachable from any
other submission, and freed when it ends, so keys cannot carry the hidden tests from one submission to the
next nor stay on the host (tested). It can write only to three tmpfs of ``disk`` MiB each (``/tmp``,
``/dev/shm``, the working copy); the root and ``/dev`` are read-only. With cgroups (v2 delegated, or v1 as
root; detected at start), a submission as a whole gets at most ``cores`` CPU cores, ``ram`` MiB and ``nproc``
processes, however many processes or sessions it starts (tested: CPU burners in their own sessions stay in
their quota); without them, the command says so once and only the per-process limits hold, so a submission
that forks CPU burners can slow the one graded beside it (not tested here: this host has cgroups v1). The
notebook with its hidden tests reaches the sandbox through a pipe and the kernel receives each test only when
that test runs. Only the trusted parent writes the gradebook, from notebooks it sanitized itself (locked and
test cells restored, even when deleted or duplicated, grade metadata reset, fake graded cells and junk
metadata disarmed, deleted tests put back, malformed files scored zero). The parent reads submitted files
without following symbolic links or opening FIFOs or devices, with size caps, so a submission can neither hang
nor exhaust the grader nor copy a file it could not read into ``autograded/``; odd folder names (not UTF-8,
control characters, formulas, a leading dash) are escaped in every report and never stop the run.

*Feedback (holds against any output).* nbgrader's ``generate_feedback`` (with :mod:`.feedback`) shows no
hidden test source, no output that contains a line of the hidden tests (verbatim up to whitespace, quotes and
escapes; an *encoded* copy, e.g. base64, is not recognised), and nothing a student wrote as active HTML or
JavaScript.

*Verdicts (holds against patching the reporting path).* A test passes only with a record signed (HMAC-SHA256,
a fresh key per run, delivered to the kernel before any student code runs and kept in C state) by the
harness's own ``try``/``except`` around that test, with the right run, cell, position and test source. So
patching IPython's ``showtraceback``, ``sys.excepthook``, ``sys.stderr``, ``run_cell``, display or kernel
messages, killing or hanging the kernel, skipping cells, forging records or calling the harness from the
submission never turns a failing test into a pass. Replacing builtins (``AssertionError``, ``abs``...), the
assertion modules (``numpy.testing``, ``torch.testing``, ``course_lib.testing``), ``sys.modules`` entries, or
leaving a trace/profile function makes the test's verdict ``tampered`` (zero, reported); rebinding a name that
an instructor cell defined (``np``, ``rel_error``) is undone before each test.

*Limits (what is not claimed).* The tests call the student's functions in the same Python process, so code
written specifically against this harness can still win: e.g. reach the HMAC object through the wrapper's
closure and sign its own record, skip test lines with a trace function that removes itself, or patch an
object the checks do not watch (a numpy array method, a library function other than the assertion modules).
Such code is confined by the sandbox, but its score is not trustworthy; only tests that compare results in
a separate process would close this gap. The separate uid per worker exists only when the grader runs as
root (tested); as a normal user, RLIMIT_NPROC is counted against that user, so without cgroups one
submission's processes count against the others' (not tested here). Partial credit through a test's
``execute_result`` uses the value the harness signed. The similarity report (:mod:`.similarity`) flags
near-copies for a human; it neither proves nor rules out copying, and changes no score.
"""

__all__ = ["GradingError", "Limits", "Outcome", "autograde"]


def __getattr__(name: str):
    # lazy: the sandbox imports .runner and the kernel imports .harness, neither needs nbgrader or SQLAlchemy
    if name in ("GradingError", "Outcome", "autograde"):
        from . import pool

        return getattr(pool, name)
    if name == "Limits":
        from .limits import Limits

        return Limits
    raise AttributeError(name)
