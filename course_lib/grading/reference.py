"""Reference data for the verdicts, and the course_lib a submission's sandbox is allowed to see.

*The reference run.* The assignment's source notebook (its solutions, the instructor's code) is executed by
the same runner, in a sandbox of its own, with the check mode ``reference`` (:mod:`course_lib.checks`): each
graded test cell publishes, for each check, the solution's value, the check's specification (tolerance, rule,
what it checks) and the values of the listed mistakes. The trusted parent compares every submission with
these records. They are cached per assignment under ``<course>/.grading/reference/``, keyed by the source
notebook, the test cells the gradebook holds, course_lib's source and the key of the hidden inputs, so a class
costs one extra notebook execution (or one per student with ``--per-student-inputs``).

*The restricted course_lib.* A submission's kernel may import the course_lib modules its source notebook lists
in its metadata (``"course": {"sandbox_modules": [...]}``), plus :mod:`course_lib.checks` and the grading
runner. Every other module of course_lib -- the reference implementations the students re-implement -- is
replaced by a stub that raises ``ImportError`` naming itself, so no thread, profile hook or import trick can
reach it: its code is not in the sandbox. As it raises, a stub publishes the attempt
(:func:`course_lib.checks.blocked_import`), which the grader reports as "used the reference" whatever name the
import was built from and whether or not the answer caught the error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from course_lib.checks import BLOCKED_MESSAGE

# checks imports judging (its plain data and judge) and testing (Test.own_work's watcher)
ALWAYS = ("course_lib.checks", "course_lib.judging", "course_lib.testing")
# a stub raises as it is imported, and reports the attempt (course_lib.checks.blocked_import publishes it), so
# an import is reported even under a name built at run time or inside a try that swallows the ImportError
STUB = "raise ImportError(__import__('course_lib.checks', fromlist=['_']).blocked_import({module!r}))\n"
STUB_MESSAGE = BLOCKED_MESSAGE
_USE = re.compile(r"\bcourse_lib\s*\.\s*([A-Za-z_]\w*)|\bfrom\s+course_lib\s+import\s+\(?\s*([\w\s,]+)")


class ReferenceError_(RuntimeError):
    """The source notebook did not produce usable reference data (a problem of the course, not a student)."""


def course_lib_dir() -> Path:
    import course_lib

    return Path(os.path.realpath(os.path.dirname(course_lib.__file__)))


def sandbox_modules(source_nb: nbformat.NotebookNode) -> list[str]:
    """The course_lib modules a submission of this notebook may import while it is graded."""
    listed = (source_nb.metadata.get("course") or {}).get("sandbox_modules") or []
    modules = sorted(set(ALWAYS) | {str(m) for m in listed if str(m).startswith("course_lib.")})
    return modules


def restricted_course_lib(allowed: list[str], dest: str | os.PathLike) -> Path:
    """Build ``dest/course_lib``: the allowed modules, the grading package, and stubs for everything else."""
    real = course_lib_dir()
    target = Path(dest) / "course_lib"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(real / "__init__.py", target / "__init__.py")
    shutil.copytree(real / "grading", target / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    tops = {m.split(".")[1] for m in allowed if m.count(".") >= 1}
    for path in sorted(real.iterdir()):
        name = path.stem if path.suffix == ".py" else path.name
        if name in ("__init__", "grading", "__pycache__") or not (path.suffix == ".py" or path.is_dir()):
            continue
        if name in tops:
            if path.is_dir():
                shutil.copytree(path, target / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, target / path.name)
        else:
            stub = STUB.format(module=f"course_lib.{name}")
            if path.is_dir():
                (target / name).mkdir()
                (target / name / "__init__.py").write_text(stub)
            else:
                (target / f"{name}.py").write_text(stub)
    for folder, _, files in os.walk(target):
        os.chmod(folder, 0o755)
        for file in files:
            os.chmod(os.path.join(folder, file), 0o644)
    return target


def forbidden_uses(sources: list[str], allowed: list[str], given: list[str] = ()) -> list[str]:
    """course_lib modules (not in ``allowed``) that student code names: a static scan, for the report only.

    The sandbox does not depend on it (those modules are stubs there); it records the attempt as a problem.
    Lines that stand verbatim in ``given`` (the instructor's cells, e.g. ``reference("course_lib.rnn")`` in a
    setup cell a student copied) are not the student's own and are not counted.
    """
    known = {line.strip() for text in given for line in (text or "").splitlines() if line.strip()}
    sources = ["\n".join(line for line in (s or "").splitlines() if line.strip() not in known) for s in sources]
    allowed_tops = {m.split(".")[1] for m in allowed if "." in m} | {m.split(".")[1] for m in ALWAYS}
    real = {p.stem if p.suffix == ".py" else p.name for p in course_lib_dir().iterdir()}
    found = set()
    for source in sources:
        for match in _USE.finditer(source or ""):
            names = [match.group(1)] if match.group(1) else re.split(r"[\s,()]+", match.group(2) or "")
            for name in names:
                if name and name in real and name not in allowed_tops and name != "__init__":
                    found.add(f"course_lib.{name}")
    return sorted(found)


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def source_cells(source_nb, test_sources: dict[str, str]) -> list[dict]:
    """The runner's job cells for the source notebook, with graded test cells as the gradebook holds them."""
    cells = []
    for index, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader") or {}
        grade_id = meta.get("grade_id")
        test = bool(meta.get("grade")) and not meta.get("solution")
        source = test_sources.get(grade_id, cell.source) if test else cell.source
        cells.append({"index": index, "kind": "test" if test else "instructor", "source": source,
                      "grade_id": grade_id if test else None})
    return cells


def cache_key(source_path: Path, cells: list[dict], key: str) -> str:
    digest = hashlib.sha256()
    digest.update(Path(source_path).read_bytes())
    digest.update(json.dumps(cells, sort_keys=True).encode())
    digest.update(tree_digest(course_lib_dir()).encode())
    digest.update(key.encode())
    return digest.hexdigest()[:32]


def records_by_grade_id(result: dict, cells: list[dict]) -> dict[str, list[dict]]:
    """grade_id -> the reference records of that test cell; raises if a test cell failed or checked nothing."""
    found: dict[str, list[dict]] = {}
    for spec in cells:
        if spec["kind"] != "test":
            continue
        cell = (result.get("cells") or {}).get(str(spec["index"])) or {}
        errors = [f"{o.get('ename')}: {str(o.get('evalue'))[:300]}" for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        if cell.get("status") != "ok" or errors:
            raise ReferenceError_(f"the source notebook's test cell {spec['grade_id']} failed in the reference "
                                  f"run ({cell.get('reason') or cell.get('status')}; {'; '.join(errors)}): fix "
                                  "the assignment (its solution must pass its own tests)")
        records = [r for r in cell.get("records", []) if isinstance(r, dict) and "spec" in r]
        if not records:
            raise ReferenceError_(f"the source notebook's test cell {spec['grade_id']} published no checks: "
                                  "write it with course_lib.checks.Test (see the README)")
        found[spec["grade_id"]] = records
    return found


def load_cached(folder: Path, digest: str) -> dict[str, list[dict]] | None:
    path = folder / f"{digest}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save_cached(folder: Path, digest: str, records: dict[str, list[dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # reference values: the instructor's eyes only
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(records, f)
    os.replace(tmp, folder / f"{digest}.json")


def restore_code(sources: list[str], allowed: list[str], exclude: set[str] | frozenset[str] = frozenset()) -> str:
    """Code that rebinds the names ``sources`` (the instructor's cells) import from allowed course_lib modules,
    from fresh imports of those modules; "" if there are none. Names in ``exclude`` (those the students' answers
    define) are left alone. The runner runs it, silently, before each graded test cell, so the cell calls
    course_lib's ``steps_per_example``, ``Test``..., not what a submission bound to those names or patched
    into the modules it had imported."""
    import ast

    modules: set[str] = set()
    lines: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(source or "")
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in allowed:
                names = [a for a in node.names if a.name != "*" and (a.asname or a.name) not in exclude]
                if names:
                    modules.add(node.module)
                    lines.append(ast.unparse(ast.ImportFrom(module=node.module, names=names, level=0)))
            elif isinstance(node, ast.Import):
                names = [a for a in node.names if a.name in allowed and a.asname and a.asname not in exclude]
                if names:
                    modules.update(a.name for a in names)
                    lines.append(ast.unparse(ast.Import(names=names)))
    if not lines:
        return ""
    drop = [f"__import__('sys').modules.pop({m!r}, None)" for m in sorted(modules)]
    return "\n".join(drop + list(dict.fromkeys(lines))) + "\n"
