"""A student's install, tested the way a student does it (not from inside this checkout's environment).

The website's introduction (``book/intro.md``, section ``(install)=``) gives the install commands in one
fenced ``bash`` block; the README and the first cell of every assignment repeat that block word for word.
The quick tests here check that the copies agree and that the block installs what was tested (the torch pin
of requirements.txt, inside the range course_lib declares; the repository of ``_config.yml``; an extra that
holds every module ``python -m course_lib.check`` imports).

The slow tests read the block and run it, command by command, as a student on Linux would:

1. ``python -m venv rnn-course``: a fresh virtual environment in a temporary folder (created by this
   Python's base interpreter; no system site packages);
2. ``source rnn-course/bin/activate``: the environment's ``bin`` put first on ``PATH``, ``PYTHONPATH`` unset;
3. ``pip install torch==... --index-url https://download.pytorch.org/whl/cpu`` **without its
   ``--index-url`` option**: this project's test machines have no internet access, and pip's configuration
   there (its config files and ``PIP_*`` variables) serves the CPU wheel of the pinned torch from a local
   wheel folder. The test then asserts that the torch installed is a CPU build of the pinned version with
   no NVIDIA package, so a machine whose index serves the CUDA build fails here instead of passing on 2 GB
   of CUDA;
4. ``pip install "course_lib[notebooks] @ git+https://github.com/rnn-course/rnn-course"`` **with a wheel of
   this checkout in place of the git URL** (the extra and the requirement's form unchanged): the wheel is
   built by ``pip wheel`` (with build isolation, as pip builds a git URL) from a copy of ``pyproject.toml``,
   ``README.md`` and ``course_lib/`` (building in place would write ``build/`` and ``*.egg-info`` into the
   checkout), and every file under ``course_lib/`` must be in it.

Everything else comes from the package index as configured on the machine. The instructor's side stays the
instructor's: ``nbgrader generate_assignment 01_feedforward`` from this checkout's environment makes the
student version. In a temporary folder outside the repository, the check command the introduction gives
(``python -m course_lib.check 01_feedforward.ipynb``) then runs with the student's ``python`` on that release,
answered right (every question passes, exit 0) and answered with a bug plus an edited test cell (those two
questions fail, exit 1: the edit is found by nbgrader's checksum, so the extra's nbgrader works). A cell added
to each notebook records the kernel's interpreter and where it imported course_lib from, so the test knows
the notebook ran in the fresh environment and not in this checkout's.

Measured on a shared 2-core machine, from the local index: 2 min 20 s in all, of which the install took
1 min 51 s under load (22 s for torch and 35 s for the rest on a quiet machine; the environment is 1.4 GB,
torch 754 MB of it), nbgrader's release 9 s and each check 8 s.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from grading_helpers import make_course

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
INTRO = ROOT / "book" / "intro.md"
ASSIGNMENT = "01_feedforward"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


# --- the documented commands ------------------------------------------------------------------------------


def install_block(text: str | None = None) -> str:
    """The fenced bash block of the introduction's section ``(install)=``, as written (without the fences)."""
    text = INTRO.read_text() if text is None else text
    found = re.search(r"^\(install\)=\n(.*?)^```bash\n(.*?)^```", text, re.M | re.S)
    assert found, f"{INTRO} has no ```bash block in its (install)= section: the install commands are read there"
    return found.group(2)


def install_commands(block: str) -> dict[str, list[str]]:
    """The block's four commands as argument lists, keyed venv, activate, torch, course_lib.

    Fails, naming the line, on any command the test does not know how to run as a student would."""
    commands = {}
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[:3] == ["python", "-m", "venv"] and len(words) == 4:
            key = "venv"
        elif words[0] == "source" and len(words) == 2:
            key = "activate"
        elif words[:2] == ["pip", "install"] and any(w.startswith("torch==") for w in words):
            key = "torch"
        elif words[:2] == ["pip", "install"] and any(w.startswith("course_lib[") for w in words):
            key = "course_lib"
        else:
            raise AssertionError(f"the install block has a command the test cannot run as a student: {line!r}")
        assert key not in commands, f"the install block has two {key} commands"
        commands[key] = words
    missing = {"venv", "activate", "torch", "course_lib"} - set(commands)
    assert not missing, f"the install block lacks its {sorted(missing)} command(s):\n{block}"
    return commands


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def pinned_torch() -> str:
    pins = re.findall(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert len(pins) == 1, "requirements.txt must pin torch exactly once"
    return pins[0]


def test_the_install_block_is_the_same_in_the_readme_and_every_assignment():
    block = install_block()
    readme = (ROOT / "README.md").read_text()
    assert f"```bash\n{block}```" in readme, "README.md's install block differs from book/intro.md's"
    notebooks = sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
    assert notebooks
    for path in notebooks:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown", f"{path.name}: its first cell must be the intro (markdown)"
        assert f"```bash\n{block}```" in first.source, f"{path.name}: its first cell lacks the intro's install block"
        assert f"python -m course_lib.check {path.name}" in first.source, f"{path.name}: no check command for it"


def test_the_install_block_installs_what_was_tested():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from course_lib import check

    commands = install_commands(install_block())
    name = commands["venv"][3]
    assert commands["activate"][1] == f"{name}/bin/activate"

    torch = commands["torch"]
    assert f"torch=={pinned_torch()}" in torch, "the install block's torch pin differs from requirements.txt's"
    cpu = "--index-url" in torch and torch[torch.index("--index-url") + 1:][:1] == [CPU_INDEX]
    assert cpu, f"the torch line must take the CPU build with --index-url {CPU_INDEX}: {shlex.join(torch)}"

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}
    assert requires["torch"].specifier.contains(pinned_torch()), "pyproject's torch range excludes the tested pin"

    (course,) = commands["course_lib"][2:]
    assert course == f"course_lib[notebooks] @ git+{repository_url()}", \
        f"the course line must install the repository of _config.yml with the notebooks extra: {course!r}"
    assert check.INSTALL_HINT in [line.strip() for line in install_block().splitlines()], \
        "course_lib.check's INSTALL_HINT differs from the install block's course line"

    extra = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["notebooks"]}
    assert {"ipykernel", "jupyterlab"} <= extra, "the notebooks extra needs a kernel and JupyterLab"
    # every module course_lib.check imports is installed by the package or its notebooks extra
    tree = ast.parse((ROOT / "course_lib" / "check.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in {"course_lib", "__future__"}}
    assert third_party, "no third-party import found in course_lib/check.py (did the parsing break?)"
    assert {canonicalize_name(m) for m in third_party} <= extra | set(requires), \
        f"course_lib.check imports {sorted(third_party)}; the notebooks extra has {sorted(extra)}"


# --- the install, run ---------------------------------------------------------------------------------------


def student_env(venv: Path) -> dict[str, str]:
    """The environment of a terminal where ``source <venv>/bin/activate`` ran."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NBGRADER_EXECUTION", "RNN_COURSE_CHECKS")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 1200):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ["pyproject.toml", "README.md", *[p.name for p in ROOT.glob("LICEN[CS]E*")]]:
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "course_lib", src / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(src)],
                 cwd=tmp)
    assert result.returncode == 0, f"building the wheel failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    (wheel,) = (tmp / "dist").glob("course_lib-*.whl")
    return wheel


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A fresh virtual environment with only the documented install; returns (venv, its env, the wheel)."""
    tmp = tmp_path_factory.mktemp("student_install")
    assert not tmp.resolve().is_relative_to(ROOT), "the student's folder must lie outside the repository"
    commands = install_commands(install_block())
    wheel = build_wheel(tmp)

    venv = tmp / commands["venv"][3]
    result = run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    env = student_env(venv)

    torch = list(commands["torch"])
    at = torch.index("--index-url")
    del torch[at:at + 2]  # no internet here: this machine's pip configuration serves the CPU wheel
    git = f"git+{repository_url()}"
    course = [w.replace(git, wheel.as_uri()) if git in w else w for w in commands["course_lib"]]
    assert course != commands["course_lib"], f"the course line does not install {git}"
    for words in (torch, course):
        result = run([str(venv / "bin" / words[0]), *words[1:]], cwd=tmp, env=env)
        assert result.returncode == 0, f"{shlex.join(words)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return venv, env, wheel


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_course_lib(student):
    import zipfile

    _, _, wheel = student
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "course_lib").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    names = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("course_lib/")}
    assert expected - names == set(), f"files of course_lib/ missing from the wheel: {sorted(expected - names)}"
    assert {"course_lib/check.py", "course_lib/checks.py", "course_lib/testing.py"} <= names


@pytest.mark.slow
def test_the_install_gives_the_cpu_build_of_the_pinned_torch(student):
    venv, env, _ = student
    probe = ("import json, importlib.metadata as m, torch, course_lib; print(json.dumps({'torch': torch.__version__, "
             "'cuda': torch.version.cuda, 'course_lib': course_lib.__file__, "
             "'nvidia': sorted(d.metadata['Name'] for d in m.distributions() "
             "if d.metadata['Name'].lower().startswith('nvidia'))}))")
    result = run([str(venv / "bin" / "python"), "-c", probe], cwd=venv.parent, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["torch"].split("+")[0] == pinned_torch(), found
    assert found["cuda"] is None and not found["nvidia"], f"a CUDA build of torch was installed: {found}"
    assert Path(found["course_lib"]).resolve().is_relative_to(venv.resolve()), found


PROBE = ("import json, sys, course_lib\n"
         "with open('kernel.json', 'w') as f:\n"
         "    json.dump({'prefix': sys.prefix, 'course_lib': course_lib.__file__}, f)\n")


def answered(release, source, wrong: bool):
    """The release with every answer from the source (its solution markers removed), and the probe cell.

    ``wrong``: affine_forward forgets the bias, and the locked test of numerical_gradient is emptied."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    answers = {c.metadata.nbgrader.grade_id: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
        if wrong and grade_id == "affine_forward":
            assert "out = x @ W + b" in cell.source
            cell.source = cell.source.replace("out = x @ W + b", "out = x @ W")
        if wrong and grade_id == "test_numerical_gradient":
            cell.source = "pass"
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    return nb


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The student version of the assignment, made by the instructor's nbgrader (this checkout's)."""
    course = make_course(tmp_path_factory.mktemp("instructor") / "course", ASSIGNMENT)
    return nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def check_command() -> list[str]:
    """The introduction's check command for this assignment, e.g. ``python -m course_lib.check 01_....ipynb``."""
    found = re.findall(rf"^\s*(python -m course_lib\.check {ASSIGNMENT}\.ipynb)\s*$", INTRO.read_text(), re.M)
    assert found, f"{INTRO} no longer shows `python -m course_lib.check {ASSIGNMENT}.ipynb`"
    return shlex.split(found[0])


def student_check(student, release, tmp_path, wrong: bool):
    venv, env, _ = student
    folder = tmp_path / ("wrong" if wrong else "right")
    folder.mkdir()
    source = nbformat.read(ROOT / "assignments" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    nbformat.write(answered(release, source, wrong), folder / f"{ASSIGNMENT}.ipynb")
    python, *args = check_command()
    assert python == "python"
    result = run([str(venv / "bin" / "python"), *args], cwd=folder, env=env, timeout=900)
    probe = folder / "kernel.json"  # written by the probe cell: in which environment did the notebook run?
    assert probe.exists(), f"the notebook's last cell did not run:\n{result.stdout}\n{result.stderr[-3000:]}"
    kernel = json.loads(probe.read_text())
    assert Path(kernel["prefix"]).resolve() == venv.resolve(), f"the notebook ran in another environment: {kernel}"
    assert Path(kernel["course_lib"]).resolve().is_relative_to(venv.resolve()), kernel
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("test_")}
    return result, lines


@pytest.mark.slow
def test_the_installed_check_passes_a_right_notebook(student, release, tmp_path):
    result, lines = student_check(student, release, tmp_path, wrong=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(lines) == 5 and all(line.endswith("passed") for line in lines.values()), result.stdout
    assert "5 of 5 questions pass (13/13 points" in result.stdout
    assert result.stderr == ""


@pytest.mark.slow
def test_the_installed_check_fails_a_wrong_answer_and_an_edited_test(student, release, tmp_path):
    result, lines = student_check(student, release, tmp_path, wrong=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED  AssertionError" in lines["test_affine_forward"], result.stdout
    assert "FAILED  this locked test cell was edited" in lines["test_numerical_gradient"], result.stdout
    for name in ("test_affine_backward", "test_softmax_loss", "test_two_layer_loss"):
        assert lines[name].endswith("passed"), result.stdout
    assert "3 of 5 questions pass (9/13 points" in result.stdout
