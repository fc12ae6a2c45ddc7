"""How well the similarity report separates copies from honest answers, on the labelled corpus.

    python benchmarks/bench_similarity.py

The corpus (tests/similarity_corpus): per assignment, three honest answers written independently from the
released notebook (each scores full marks) and seven disguised copies of them or of the solution (whole
answers renamed, reordered, reformatted, with comments and no-op lines; partial copies of the longer half of
the cells). For every labelled pair it prints the distribution of the notebook similarity (min / median / max)
of honest answers among themselves, of honest answers against the references (the solution notebook and
course_lib), of copies against what they copied, and of copies against answers they did not copy; the largest
similarity of a single function in honest pairs and the smallest in copied ones; then the precision and
recall of the report's rule (a copied function, or similarity >= THRESHOLD with MIN_SHARED fingerprints),
per assignment and in all.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import similarity_corpus as corpus  # noqa: E402

from course_lib.grading import similarity as sim  # noqa: E402

GROUPS = ("honest-honest", "honest-reference", "other", "copy")


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} (n={len(values)})"


def unit_extremes(assignment: str) -> tuple[float, float]:
    """(largest similarity of one function in an honest pair, smallest of a copied function), over the
    functions the report compares."""
    everyone = corpus.answers(assignment)
    given = sim._prints(corpus.released(assignment))
    skip = set(sim.too_short(corpus.notebook(everyone[corpus.REFERENCE], assignment), corpus.released(assignment)))
    prints = {n: {u: p - given.get(u, set()) for u, p in sim._prints(corpus.notebook(c, assignment)).items()}
              for n, c in everyone.items()}
    cell_of = {u: gid for gid, src in everyone[corpus.REFERENCE].items() for u in sim.canonical(src)}
    origin = {n: {g: n for g in c} for n, c in corpus.honest(assignment).items()}
    origin[corpus.REFERENCE] = {g: corpus.REFERENCE for g in everyone[corpus.REFERENCE]}
    origin.update({n: who for n, (_, who) in corpus.copies(assignment).items()})
    honest_max, copy_min = 0.0, 1.0
    for a, b, _ in corpus.pairs(assignment):
        for unit in set(prints[a]) & set(prints[b]) - skip:
            size = min(len(prints[a][unit]), len(prints[b][unit]))
            if size < sim.MIN_UNIT:
                continue
            value = len(prints[a][unit] & prints[b][unit]) / size
            gid = cell_of.get(unit)
            if origin[a].get(gid) == origin[b].get(gid):
                copy_min = min(copy_min, value)
            else:
                honest_max = max(honest_max, value)
    return honest_max, copy_min


def main() -> None:
    print(f"rule: a function with similarity >= {sim.UNIT_THRESHOLD} (functions of >= {sim.MIN_UNIT} "
          f"fingerprints), or notebook similarity >= {sim.THRESHOLD} with >= {sim.MIN_SHARED} shared fingerprints")
    totals = {"tp": 0, "fp": 0, "fn": 0}
    for assignment in corpus.assignments():
        result = corpus.measure(assignment)
        print(f"\n{assignment}: {len(corpus.honest(assignment))} honest answers, {len(corpus.copies(assignment))} "
              f"copies, {len(result['pairs'])} labelled pairs; too short to tell: "
              f"{', '.join(result['too_short']) or 'none'}")
        for group in GROUPS:
            values = [p[4] for p in result["pairs"] if p[3] == group]
            print(f"  {group:17s} similarity min / median / max: {spread(values)}")
        honest_max, copy_min = unit_extremes(assignment)
        print(f"  one function: honest pairs at most {honest_max:.2f}, copied functions at least {copy_min:.2f}")
        tp = sum(p[6] and p[2] == "copy" for p in result["pairs"])
        fp = sum(p[6] and p[2] == "honest" for p in result["pairs"])
        fn = sum(not p[6] and p[2] == "copy" for p in result["pairs"])
        for a, b, label, _, value, _, flagged in result["pairs"]:
            if flagged != (label == "copy"):
                print(f"  {'false positive' if flagged else 'missed copy'}: {a} ~ {b} ({value:.2f})")
        print(f"  precision {tp / max(1, tp + fp):.2f}, recall {tp / max(1, tp + fn):.2f} "
              f"({tp} copies found, {fp} honest pairs flagged, {fn} copies missed)")
        for key, value in (("tp", tp), ("fp", fp), ("fn", fn)):
            totals[key] += value
    tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
    print(f"\nall assignments: precision {tp / max(1, tp + fp):.2f}, recall {tp / max(1, tp + fn):.2f} "
          f"({tp} copies found, {fp} honest pairs flagged, {fn} copies missed)")


if __name__ == "__main__":
    main()
