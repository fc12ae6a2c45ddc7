"""``python -m course_lib.grading autograde ASSIGNMENT``: the instructor's command (run in the course directory)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import sandbox
from .limits import Limits
from .pool import GradingError, autograde, max_scores
from .slurm import SlurmError
from .summary import digest, printable, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading",
                                     description="Parallel, sandboxed autograding into the nbgrader gradebook.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("autograde", help="grade every submission of an assignment")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: cores + 1)")
    p.add_argument("--db-url", default=None, help="gradebook URL (default: the course's; e.g. postgresql://...)")
    p.add_argument("--limits", default=None, help="e.g. cell=120,wall=600,cpu=600,mem=4096,nproc=256,output=10")
    p.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
    p.add_argument("--report-dir", default=None, help="where to write grades.csv, problems.csv, scores.png "
                                                       "(default: <course>/reports/<assignment>)")
    p.add_argument("--secret-file", default=None,
                   help="a file holding the instructor's secret that seeds the hidden tests' inputs (default: "
                        "the RNN_COURSE_GRADING_SECRET variable; none: the published fixed inputs)")
    p.add_argument("--per-student-inputs", action="store_true",
                   help="with a secret: different hidden inputs for every student (one reference run each)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-sandbox-i-trust-this-code", dest="trust", action="store_true",
                   help="run submissions WITHOUT a sandbox, with your own rights (only for code you trust)")
    p.add_argument("--backend", choices=["local", "slurm"], default="local",
                   help="where submissions run: this host's sandboxes (default), or one Slurm array task each "
                        "(the same sandbox on the node; verdicts and the gradebook stay here)")
    p.add_argument("--slurm-partition", default=None, help="Slurm partition (default: the cluster's default)")
    p.add_argument("--slurm-args", default=None, help='more sbatch options, e.g. "--qos=teaching --account=cs101"')
    p.add_argument("--slurm-dir", default=None, help="a folder the nodes see at the same path (default: "
                                                     "<course>/.grading/slurm)")
    p.add_argument("--slurm-timeout", type=float, default=3600.0,
                   help="seconds Slurm may take (queue and run) for the class before what is left is cancelled "
                        "and reported as timed out (default 3600)")
    q = sub.add_parser("similarity", help="list near-copies among submissions and of the reference code "
                                          "(reports/<assignment>/similarity.csv; changes no score)")
    q.add_argument("assignment")
    q.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
    q.add_argument("--threshold", type=float, default=None, help="similarity to report, 0-1 (default: 0.6)")
    q.add_argument("--report-dir", default=None, help="default: <course>/reports/<assignment>")
    q.add_argument("--db-url", default=None, help="gradebook URL (default: the course's)")
    e = sub.add_parser("extension", help="give a student more time on an assignment (nbgrader's extension: the "
                                         "late penalty counts from the new due date; grade that student again)")
    e.add_argument("assignment")
    e.add_argument("student")
    e.add_argument("--days", type=float, default=0)
    e.add_argument("--hours", type=float, default=0)
    e.add_argument("--remove", action="store_true", help="take the student's extension back")
    e.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
    e.add_argument("--db-url", default=None, help="gradebook URL (default: the course's)")
    w = sub.add_parser("watch", help="grade each new submission in the exchange as it arrives and release its "
                                     "feedback (runs until Ctrl-C or SIGTERM; deploy/RUNBOOK.md)")
    w.add_argument("assignment")
    w.add_argument("--policy", default=None, help="a TOML file: attempts, counts, cooldown_minutes, "
                                                  "hidden_before_deadline (options below override it)")
    w.add_argument("--attempts", type=int, default=None, help="graded attempts per student (0: no limit)")
    w.add_argument("--counts", choices=["last", "best"], default=None, help="the attempt that counts")
    w.add_argument("--cooldown", type=float, default=None, metavar="MINUTES",
                   help="minutes between graded attempts of a student")
    w.add_argument("--hidden", choices=["show", "hide"], default=None,
                   help="hidden tests' results in the feedback before the due date (default: show)")
    w.add_argument("--workers", type=int, default=1, help="submissions graded at once (default: 1)")
    w.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the inbound folder")
    w.add_argument("--limits", default=None, help="as for autograde")
    w.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
    w.add_argument("--secret-file", default=None, help="as for autograde")
    w.add_argument("--per-student-inputs", action="store_true", help="as for autograde")
    w.add_argument("--no-sandbox-i-trust-this-code", dest="trust", action="store_true",
                   help="run submissions WITHOUT a sandbox, with your own rights (only for code you trust)")
    m = sub.add_parser("misconceptions", help="rebuild the class misconception report (what each question's "
                                              "failures were) from reports/<assignment>/verdicts.json")
    m.add_argument("assignment", nargs="*", help="default: every assignment graded so far (and the course's report)")
    m.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
    m.add_argument("--names", action="store_true", help="list student ids in the reports (default: counts only)")
    m.add_argument("--db-url", default=None, help="gradebook URL (default: the course's)")
    lms = sub.add_parser("lms", help="import the class list from Canvas or Moodle, export grades to them")
    lms_sub = lms.add_subparsers(dest="lms_command", required=True)
    r = lms_sub.add_parser("roster", help="students from an LMS export (CSV) into the gradebook")
    r.add_argument("file")
    r.add_argument("--lms", choices=["canvas", "moodle"], required=True)
    r.add_argument("--id-column", default=None, help="the column holding each student's account name "
                                                     "(default: Canvas 'SIS Login ID', Moodle 'Username')")
    r.add_argument("--email-local-part", action="store_true", help="(Moodle) the account name is the e-mail "
                                                                    "address before the @")
    g = lms_sub.add_parser("grades", help="the gradebook's scores as the LMS imports them (CSV)")
    g.add_argument("--lms", choices=["canvas", "moodle"], required=True)
    g.add_argument("--out", required=True, help="the CSV file to write")
    g.add_argument("--assignment", action="append", help="only these assignments (repeatable; default: all)")
    g.add_argument("--column", action="append", default=[], metavar="ASSIGNMENT=HEADER",
                   help="the LMS's column for an assignment, e.g. 01_feedforward='Assignment 1 (1234)'")
    g.add_argument("--missing", choices=["zero", "blank"], default="zero", help="no submission: 0 or empty")
    for q_ in (r, g):
        q_.add_argument("--course", default=".", help="the nbgrader course directory (default: current directory)")
        q_.add_argument("--db-url", default=None, help="gradebook URL (default: the course's)")
    args = parser.parse_args(argv)
    if args.command == "lms":
        return lms_command(args)
    if args.command == "misconceptions":
        return misconceptions(args)
    if args.command == "similarity":
        return similarity(args)
    if args.command == "extension":
        return extension(args)
    if args.command == "watch":
        from .watch import main as watch

        return watch(args)

    try:
        from .pool import load_course

        config, _ = load_course(args.course, args.db_url)
        timeout = config.get("Execute", {}).get("timeout")
        limits = Limits.parse(args.limits, Limits(cell=float(timeout)) if timeout else None)
        if args.trust:
            print("WARNING: --no-sandbox-i-trust-this-code: students' code runs with YOUR rights, "
                  "without network, filesystem or user isolation.", file=sys.stderr)
        secret = None
        if args.secret_file:
            try:
                with open(args.secret_file, encoding="utf-8") as f:
                    secret = f.read().strip()
            except (OSError, UnicodeDecodeError) as error:
                raise GradingError(f"cannot read the secret file: {error}") from None
            if not secret:
                raise GradingError(f"the secret file {args.secret_file} is empty")
        if args.per_student_inputs and not (secret or os.environ.get("RNN_COURSE_GRADING_SECRET")):
            raise GradingError("--per-student-inputs needs a secret (--secret-file or RNN_COURSE_GRADING_SECRET)")
        slurm_options = [o for o, v in (("--slurm-partition", args.slurm_partition), ("--slurm-args", args.slurm_args),
                                        ("--slurm-dir", args.slurm_dir)) if v is not None]
        if args.backend != "slurm" and slurm_options:
            raise GradingError(f"{', '.join(slurm_options)} need --backend slurm")
        unenforced = sandbox.cgroups().unenforced()
        if unenforced and args.backend == "local":
            print(f"note: {unenforced}.", file=sys.stderr)
        start = time.perf_counter()
        backend = None
        if args.backend == "slurm":
            from .slurm import SlurmBackend

            backend = SlurmBackend(args.slurm_dir or os.path.join(os.path.abspath(args.course), ".grading", "slurm"),
                                   partition=args.slurm_partition, extra_args=args.slurm_args,
                                   timeout=args.slurm_timeout)
        try:
            outcomes = autograde(args.course, args.assignment, students=args.student, workers=args.workers,
                                 db_url=args.db_url, limits=limits, trust=args.trust, progress=not args.quiet,
                                 secret=secret, per_student=args.per_student_inputs, backend=backend)
        finally:
            if backend is not None:
                backend.close()
        seconds = time.perf_counter() - start
        _, coursedir = load_course(args.course, args.db_url)
        maxima = max_scores(coursedir.db_url, args.assignment)
        folder = args.report_dir or os.path.join(coursedir.root, "reports", args.assignment)
        paths = report(outcomes, maxima, folder, args.assignment)
        paths.update(class_report(outcomes, maxima, folder, args.assignment, coursedir.db_url))
        from .similarity import similarity_report

        paths["similarity"], _ = similarity_report(args.course, args.assignment, folder, db_url=args.db_url)
    except (GradingError, ValueError, SlurmError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(digest(outcomes, maxima, paths, seconds))
    return 0


def class_report(outcomes, maxima: dict[str, float], folder: str, assignment: str, db_url: str) -> dict[str, str]:
    """This run's verdicts merged into ``verdicts.json``, and the misconception report of the whole class."""
    from . import misconceptions as mc

    checks = {g: c for o in outcomes for g, c in o.checks.items()}
    path = os.path.join(folder, "verdicts.json")
    previous = mc.load_verdicts(path).get("checks", {})
    data = mc.save_verdicts(path, assignment, {**previous, **checks}, maxima,
                            {o.student: o.verdicts for o in outcomes if o.verdicts})
    return mc.write_reports(mc.tallies_of(data, mc.roster(db_url)), folder, f"{assignment}: what the class got wrong")


def lms_command(args) -> int:
    from . import lms

    try:
        if args.lms_command == "roster":
            people, skipped = lms.read_roster(args.file, args.lms, args.id_column, args.email_local_part)
            lms.import_roster(args.course, people, args.lms, args.db_url)
            print(f"{len(people)} students in the gradebook from {args.file}")
            for line in skipped:
                print(f"  left out: {printable(line)}")
            return 0
        columns = {}
        for item in args.column:
            name, sep, header = item.partition("=")
            if not sep or not name or not header:
                raise lms.LMSError(f"--column {item!r}: write ASSIGNMENT=HEADER")
            columns[name] = header
        left_out = lms.export_grades(args.course, args.out, args.lms, args.assignment, columns, args.missing,
                                     args.db_url)
    except (GradingError, lms.LMSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"grades written for {args.lms}: {args.out}")
    if left_out:
        print(f"  not on the imported roster, so left out: {printable(', '.join(left_out))}")
    return 0


def misconceptions(args) -> int:
    """Per assignment, and for the course when several are asked for: misconceptions.csv and .html."""
    from .misconceptions import rebuild

    try:
        paths = rebuild(args.course, args.assignment or None, names=args.names, db_url=args.db_url)
    except (GradingError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def extension(args) -> int:
    """Record (or remove) an extension in the gradebook, as ``Gradebook.grant_extension`` does."""
    from nbgrader.api import Gradebook, MissingEntry

    from .pool import load_course

    if not args.remove and (args.days < 0 or args.hours < 0 or args.days + args.hours == 0):
        print("error: give a positive --days and/or --hours (or --remove)", file=sys.stderr)
        return 2
    try:
        _, coursedir = load_course(args.course, args.db_url)
        with Gradebook(coursedir.db_url) as gb:
            try:
                gb.find_submission(args.assignment, args.student)
            except MissingEntry:
                raise GradingError(f"{printable(args.student)} has no submission of {args.assignment} in the "
                                   "gradebook yet: collect and grade first, then extend and grade again") from None
            if args.remove:
                gb.grant_extension(args.assignment, args.student)
            else:
                gb.grant_extension(args.assignment, args.student, days=args.days, hours=args.hours)
            due = gb.find_submission(args.assignment, args.student).duedate
    except (GradingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{printable(args.student)}: {args.assignment} is due {due} UTC" if due else
          f"{printable(args.student)}: {args.assignment} has no due date (the extension changes nothing)")
    return 0


def similarity(args) -> int:
    from .similarity import THRESHOLD, similarity_report

    try:
        path, matches = similarity_report(args.course, args.assignment, args.report_dir,
                                          threshold=THRESHOLD if args.threshold is None else args.threshold,
                                          db_url=args.db_url)
    except (GradingError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(matches)} near-copies to review (no score was changed): {path}")
    for m in matches:
        print(f"  {printable(m.student)} ~ {printable(m.other)}: {m.similarity:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
