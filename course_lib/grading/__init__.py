"""Autograding a whole class: parallel, sandboxed, and hard to fool (threat model below).

``python -m course_lib.grading autograde ASSIGNMENT`` (in the nbgrader course directory) grades every
submission into the standard nbgrader gradebook, like ``nbgrader autograde``, but

* in parallel (``--workers``, default: one more than the cores), with a progress bar;
* each submission in a bubblewrap sandbox (:mod:`.sandbox`): no network, a user namespace of its own, a
  filesystem with only its working copy, size-bounded tmpfs, an unprivileged uid, CPU/wall/memory/process/
  output/file-size limits per process and, where the host allows cgroups, CPU/RAM/process limits per
  submission (:mod:`.limits`);
* with verdicts decided from data outside the student's process (:mod:`.verdict`, :mod:`course_lib.checks`).

Modules, in the order a submission meets them: :mod:`.reference` (trusted: the source notebook's reference
run, once per class or per student, and the restricted course_lib), :mod:`.prepare` (trusted, with the
gradebook: nbgrader's sanitizing plus metadata reset and restoration of deleted tests), :mod:`.sandbox` and
:mod:`.runner` (the only untrusted execution; :mod:`.outputs` rebuilds what its kernel sends as valid
notebook outputs, there and again in the parent), :mod:`.verdict` (trusted: compares the submission's check
records with the reference's), :mod:`.scoring` (trusted: nbgrader's scoring preprocessors write the
gradebook), :mod:`.summary`, :mod:`.similarity` (trusted: near-copies for review, no score). :mod:`.pool`
runs the pool (and holds :func:`autograde`); :mod:`.slurm` hands the sandboxed runs to Slurm array tasks
instead (``--backend slurm``: :mod:`.slurm_task` runs the same sandbox on the nodes, :mod:`.slurm_results`
reads the plain data back, the rest stays here); :mod:`.feedback` is nbgrader's ``generate_feedback``
preprocessor; :mod:`.watch` grades each submission as it arrives in the exchange (``python -m
course_lib.grading watch``), by :mod:`.watch_policy` (attempts, fairness, its record), with
:mod:`.watch_exchange` (what it trusts of the exchange) and :mod:`.watch_feedback` (its notes on the feedback).

Threat model
------------
The adversary is a student who submits any notebook (any code, any metadata, any bytes) and knows this
package's source. The instructor's machine, the gradebook, the source notebooks and the other submissions are
trusted; the grader's own code (venv, course_lib) is read-only to the student.

*Verdicts (hold against any code in the kernel).* A graded test cell only computes in the student's kernel: it
calls the student's functions on the test's inputs and publishes the results as plain data (JSON numbers, strings
and base64 arrays; nothing executable, never pickle). The trusted parent, which runs no student code, compares
each value with the value the *source* notebook's solution produced for the same check in its own reference run,
under the reference run's tolerance, rule and hints (:func:`course_lib.checks.judge_cell`); the student's copy of
a check's specification is ignored. A check with no value, two values, or a wrong one fails, and so does a graded
cell that wrote to stderr (nbgrader's own rule, so that the modes agree; its feedback quotes the first line
written). So patching IPython, ``showtraceback``, ``sys.stderr``, the display publisher, the assertion modules,
``course_lib.checks`` itself, or forging records, gains nothing: to score, a submission must hand back the right
values for the test's inputs. A check that compares numbers refuses complex values unless the expected value is
complex (it never compares a real part alone). What remains: a submission that computes the right values
*somehow* scores, for instance by embedding answers precomputed from the public notebook; an instructor secret
(``RNN_COURSE_GRADING_SECRET`` or ``--secret-file``; per student with ``--per-student-inputs``) draws the hidden
tests' inputs from values the public repository does not reveal.

*Stand-ins (questions that compose others).* A test of a question that composes other answers runs the
student's function with stand-ins for the functions it calls, so that one bug costs one question. In 01
(``two_layer_loss``), 02 (``rnn_forward``, ``rnn_backward``, ``generate``) and 04 (``lstm_sequence``,
``classifier_loss``) a stand-in that computes what another question asks for (01's PyTorch layers, 02's RNN
steps, 04's whole-sequence stand-in) is made only by the test cell that needs it, so it does not exist while
that other question is tested and cannot be called as its answer (04's step stand-ins, in the setup cell, are a
tanh RNN, not an LSTM step; 06's ``attention_cache``, which computes question 1's weights, is defined only in
question 2's test cell); and the stand-ins compute a slightly different network from the one the questions ask
for (01: every affine output times a scale and the scores times a temperature; 02: the step's pre-activation
times a scale; 04: the tanh RNN on ``[h, c]`` with its pre-activation times a scale), with values the hidden
test draws from its generator (from the secret, when one is set), so an answer that ignores the functions it
is handed and computes the stand-in's result itself (a factory of the notebook, ``course_lib.rnn``, torch
autograd) fails the hidden test, in the sandbox and under plain nbgrader alike (tested:
``tests/test_grading_standins.py``). What remains: the stand-ins' source is public, so a submission can copy it
into an earlier answer (01's and 02's backward stand-ins use PyTorch autograd, which the hidden tests'
``own_work("torch")`` catches; 02's forward stand-in is one line of numpy, as is its answer). A submission
that reads the scale out of the function it is handed can reproduce the stand-in (more work than the answer).

*Own work* (``Test.own_work``: no calls into course_lib's references or torch while the answer runs). A
watcher in the kernel (a profile hook, :func:`course_lib.testing.forbid_calls_into`) lists the forbidden calls
it saw, and the list is handed back as a check like any value: in the sandbox the parent judges it against the
reference run's (empty) list, with the same message as ``assert`` mode, so the three modes agree on an answer
written with torch autograd (tested: ``tests/test_grading_standins.py``, the record-mode route and the real
sandbox). It holds against an answer that calls torch or a reference, not against a determined forger: the
watcher runs in the student's kernel, so a submission that removes the profile hook (``sys.setprofile``), runs
the work in another thread, or publishes an empty list itself escapes it; in the sandbox the references are
absent anyway (below), and torch must then give the right values, which is the work the question asks for.

*Rule checks* (e.g. "no Python loop over the examples", measured by ``course_lib.testing.steps_per_example``)
judge a property of a value that is *measured in the kernel*, and a failed rule fails its whole test cell.
Before each graded test cell the runner silently rebinds the names the instructor's cells import from
course_lib (``Test``, ``steps_per_example``...) from freshly imported modules (:func:`.reference.restore_code`),
so rebinding such a name in the notebook or patching a course_lib module gains nothing (tested). A submission
that hooks the interpreter itself (IPython's pre-run events or input transformers, ``sys.settrace``) can
still make a rule pass that should fail; the cell's value checks still need the right values.

*Kernel messages.* Whatever the kernel sends (student code can send any message on its kernel's channels),
the runner keeps only what a notebook holds, rebuilt with valid types (:mod:`.outputs`): every output message
counts, all its fields, against the ``output`` budget; an execution count is kept only if it is an int in
[0, 2**31); comm (widget) and other messages are dropped. The parent rebuilds every output again before it
writes ``autograded/``, so the notebook is valid nbformat and ``nbgrader generate_feedback`` reads it (tested:
a 60 MiB execution count, a display message with a string execution count).

*Keys.* The kernel never receives the secret, nor the student's (or the class's) derived key: only a key for
the one notebook it grades (:func:`course_lib.checks.scoped_key` of ``<assignment>/<notebook>``), which yields
that notebook's hidden inputs, which the student's functions receive anyway. The secret and these keys are
redacted (any case) from everything the kernel printed before the autograded notebook, and so the feedback,
is written (tested); an *encoded* copy is not recognised, which reveals that one notebook's inputs only.
What remains: a student who prints the hidden inputs in a graded run reads them in the feedback, and a
regrade of a resubmission uses the same inputs (the key does not change between runs).

*The reference is absent.* The sandbox binds a restricted copy of course_lib over the real one: the modules the
source notebook lists (``"course": {"sandbox_modules": [...]}``), ``course_lib.checks`` (with
``course_lib.judging`` and ``course_lib.testing``, which it imports) and the grading runner; every other module
is a stub that raises ``ImportError``. No thread, profile hook or import trick can call code that is not there.
Attempts are reported as "used the reference": a static scan of the answers, and the stubs themselves, which
publish each import as data, whatever name it was built from at run time and whether or not the answer catches
the error (tested). A submission that first disables the kernel's display publisher can keep an attempt out of
the report (it still gains nothing).

*Confinement (holds against any code).* Student code runs only in the sandbox: it cannot reach the network
(not even 127.0.0.1 of the host), cannot see or change the course directory, the gradebook, the reference
data, the hidden tests on disk or other submissions, and is stopped by the limits. It runs in a user namespace
of its own (made by the trusted launcher when the grader is root, by bwrap otherwise; no namespace can be
nested inside), with a new session keyring: its user, user-session, persistent and session keyrings are new,
unreachable from any other submission, and freed when it ends, so keys cannot carry the hidden tests from one
submission to the next nor stay on the host (tested). It can write only to three tmpfs of ``disk`` MiB each
(``/tmp``, ``/dev/shm``, the working copy); the root and ``/dev`` are read-only. With cgroups (v2 delegated,
or v1 as root; detected at start), a submission as a whole gets at most ``cores`` CPU cores, ``ram`` MiB and
``nproc`` processes, however many processes or sessions it starts (tested: CPU burners in their own sessions
stay in their quota); without them, the command says so once and only the per-process limits hold, so a
submission that forks CPU burners can slow the one graded beside it. The notebook with its hidden tests
reaches the sandbox through a pipe. The hidden tests' code does run in the kernel (it must call the student's
functions), so a submission can read it there; with a secret, reading it reveals no expected value. Only the
trusted parent writes the gradebook, from notebooks it sanitized itself (locked and test cells restored, even
when deleted or duplicated, grade metadata reset, fake graded cells and junk metadata disarmed, deleted tests
put back, malformed files scored zero). The parent reads submitted files without following symbolic links or
opening FIFOs or devices, with size caps, so a submission can neither hang nor exhaust the grader nor copy a
file it could not read into ``autograded/``; each file left out (a link, a FIFO, a device, too large) is
reported as "file left out" with its name (tested); odd folder names (not UTF-8, control characters, formulas,
a leading dash) are escaped in every report and never stop the run. The grader's temporary folders (the
restricted course_lib copies, the working copies) are removed when the run ends, also on an error or Ctrl-C.

*Feedback (holds against any output).* nbgrader's ``generate_feedback`` (with :mod:`.feedback`) shows no
hidden test source, no line of output that quotes a line of the hidden tests (verbatim up to whitespace, quotes
and escapes; such a line is redacted, the rest of the output is kept; an *encoded* copy, e.g. base64, is not
recognised), and nothing a student wrote as active HTML or JavaScript. A failed check's message says what was
checked and the likely mistake, never the expected value or a hidden input; check descriptions and hints are
not secrets (they are shown for visible and hidden tests alike). A failed test cell never says it passed, in
the feedback or in the instructor's autograded notebook (``verdict.apply``).

*Grading on submission* (:mod:`.watch`, :mod:`.watch_exchange`). The exchange's inbound folder is writable by
every student, so the watcher believes nothing a submission says about itself: its time (for attempts, the
cool-down, the due date, and the ``timestamp.txt`` the gradebook and the late penalty read) is when its folder
last changed (its ctime, which no user can set back), not its name or its ``timestamp.txt``; it is taken as
``<student>``'s only if the Unix user of that name owns its folder (or the watcher's own user does); ids outside
``[A-Za-z0-9_.@-]`` are ignored; its files are copied without following links or opening FIFOs, with size and
count caps. So a student can neither spend another's attempts nor replace another's grade by naming a folder
after them, nor date a submission back (tested). A student who submits in a loop delays the others by at most the
gradings under way. (``nbgrader collect`` itself trusts the name and ``timestamp.txt``.)

*Limits (what is not claimed).* The separate uid per worker exists only when the grader runs as root
(tested); as a normal user, RLIMIT_NPROC is counted against that user, so without cgroups one submission's
processes count against the others' (not tested here). Under plain ``nbgrader autograde`` (in-process, no
sandbox) the same test cells compare in the student's process and can be fooled there, and the secret
itself (``RNN_COURSE_GRADING_SECRET`` in the environment) is in that process, where a submission can print
it: use this command for grades that must hold. The similarity report (:mod:`.similarity`) flags
near-copies for a human; it neither proves nor rules out copying, and changes no score.
"""

__all__ = ["GradingError", "Limits", "Outcome", "autograde"]


def __getattr__(name: str):
    # lazy: the sandbox imports .runner, which needs neither nbgrader nor SQLAlchemy
    if name in ("GradingError", "Outcome", "autograde"):
        from . import pool

        return getattr(pool, name)
    if name == "Limits":
        from .limits import Limits

        return Limits
    raise AttributeError(name)
