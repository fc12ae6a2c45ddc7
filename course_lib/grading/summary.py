"""The end-of-run summary: a CSV of grades, a CSV of problems, a score-distribution figure, a printed digest.

Student ids (folder names) and problem reasons (which may quote a submission's own error messages) are data
from students: :func:`printable` escapes what is not valid UTF-8 and every control or format character
(``\\x1b``, newlines, bidirectional overrides), so nothing reaches the terminal raw; :func:`csv_cell` also
defuses spreadsheet formulas (a cell starting with ``=``, ``+``, ``-``, ``@`` gets a leading ``'``).
"""

from __future__ import annotations

import csv
import os
import unicodedata
from collections import Counter

from .pool import Outcome


def printable(text: str) -> str:
    """``text`` with undecodable bytes as ``\\xNN`` and control/format characters as ``\\xNN``/``\\uNNNN``."""
    text = str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")  # folder names: the original bytes
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "backslashreplace")
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else
                       f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def csv_cell(text) -> str:
    """:func:`printable`, and a leading ``'`` before what a spreadsheet would run as a formula."""
    text = printable(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _writer(f):
    writer = csv.writer(f)
    return lambda row: writer.writerow([csv_cell(cell) for cell in row])


def write_grades(outcomes: list[Outcome], maxima: dict[str, float], path: str) -> None:
    """One row per student: total, then one column per graded cell (score), then the problem kinds."""
    ids = list(maxima)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writerow = _writer(f)
        writerow(["student", "score", "max_score", *ids, "problems"])
        for o in outcomes:
            row = [o.student, f"{o.score:g}", f"{sum(maxima.values()):g}"]
            row += [f"{o.scores[i][0]:g}" if i in o.scores else "" for i in ids]
            row.append("; ".join(sorted({kind for kind, _ in o.problems})))
            writerow(row)


def write_problems(outcomes: list[Outcome], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writerow = _writer(f)
        writerow(["student", "kind", "reason"])
        for o in outcomes:
            for kind, reason in o.problems:
                writerow([o.student, kind, reason])


def plot_distribution(outcomes: list[Outcome], maxima: dict[str, float], path: str, title: str) -> None:
    """One small histogram per graded cell (share of the class at each score), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ids = list(maxima)
    cols = min(3, max(1, len(ids)))
    rows = (len(ids) + cols - 1) // cols
    fig = Figure(figsize=(4 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, grade_id in zip(axes, ids, strict=False):
        values = [o.scores[grade_id][0] for o in outcomes if grade_id in o.scores]
        counts = Counter(values)
        xs = sorted(counts)
        ax.bar([f"{x:g}" for x in xs], [counts[x] for x in xs], color="tab:blue")
        ax.set_title(f"{grade_id} (max {maxima[grade_id]:g})", fontsize=9)
        ax.set_xlabel("score")
        ax.set_ylabel("submissions")
    for ax in axes[len(ids):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def report(outcomes: list[Outcome], maxima: dict[str, float], folder: str, assignment: str) -> dict[str, str]:
    """Write grades.csv, problems.csv and scores.png into ``folder``; return their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = {"grades": os.path.join(folder, "grades.csv"), "problems": os.path.join(folder, "problems.csv"),
             "figure": os.path.join(folder, "scores.png")}
    write_grades(outcomes, maxima, paths["grades"])
    write_problems(outcomes, paths["problems"])
    plot_distribution(outcomes, maxima, paths["figure"], f"{assignment}: {len(outcomes)} submissions")
    return paths


def digest(outcomes: list[Outcome], maxima: dict[str, float], paths: dict[str, str], seconds: float) -> str:
    total = sum(maxima.values())
    lines = [f"graded {len(outcomes)} submissions in {seconds:.1f} s"]
    if outcomes:
        mean = sum(o.score for o in outcomes) / len(outcomes)
        lines.append(f"mean score {mean:.2f} / {total:g}; full marks: "
                     f"{sum(o.score == total for o in outcomes)}, zero: {sum(o.score == 0 for o in outcomes)}")
    flagged = [o for o in outcomes if o.problems]
    lines.append(f"submissions with problems: {len(flagged)}")
    for o in flagged:
        for kind, reason in o.problems:
            lines.append(f"  {printable(o.student)}: {kind}: {printable(reason)}")
    lines += [f"grades:   {paths['grades']}", f"problems: {paths['problems']}", f"figure:   {paths['figure']}"]
    if "similarity" in paths:
        lines.append(f"copies:   {paths['similarity']} (near-copies to review; no score changed)")
    if "misconceptions_html" in paths:
        lines.append(f"mistakes: {paths['misconceptions_html']} (what the class got wrong, question by question)")
    return "\n".join(lines)
