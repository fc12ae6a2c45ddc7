"""Checks of the course website: its structure (fast) and a real build with warnings as errors (slow).

The build runs ``tools/build_book.py`` (what ``make book`` runs) into the repository's ``_build``, so a
developer's later ``make book`` reuses its execution cache.
"""

from __future__ import annotations

import ast
import html
import itertools
import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def chapters() -> list[str]:
    """Pages that execute code: every toc entry whose markdown has a jupytext header."""
    return [f for f in toc_files() if "format_name: myst" in (ROOT / f"{f}.md").read_text()]


def test_every_toc_entry_exists_and_every_page_is_listed():
    files = toc_files()
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"{f}.md is in _toc.yml but missing"
    listed = {f"{f}.md" for f in files}
    for page in (ROOT / "book").glob("*.md"):
        assert page.relative_to(ROOT).as_posix() in listed, f"{page.name} is not in _toc.yml"


def test_chapters_have_the_required_parts():
    """Every executable page has objectives, a summary and code; every assignment is linked, as the student
    notebook, from the Assignment section of a page (a chapter split over several pages links it once, from the
    page whose material it covers), and every Assignment section links one."""
    assert chapters(), "no executable chapter found"
    linked = set()
    for f in chapters():
        text = (ROOT / f"{f}.md").read_text()
        assert "kernelspec:" in text and "name: python3" in text, f"{f}: kernelspec missing"
        assert "Learning objectives" in text, f"{f}: no learning objectives"
        assert re.search(r"^## Summary", text, re.M), f"{f}: no summary section"
        assert "{code-cell}" in text, f"{f}: no executable code"
        links = re.findall(r"\{download\}`[^`]*</_build/student/([\w]+)\.ipynb>`", text)
        if re.search(r"^## Assignment", text, re.M):
            assert links, f"{f}: its Assignment section must link the student notebook with {{download}}"
        for assignment in links:
            source = ROOT / "assignments" / "source" / assignment / f"{assignment}.ipynb"
            assert source.exists(), f"{f} links {assignment}, which has no source notebook"
        linked.update(links)
    sources = {p.name for p in (ROOT / "assignments" / "source").iterdir() if p.is_dir()}
    assert sources <= linked, f"no page links {sorted(sources - linked)}"


def test_assignments_are_numbered_in_the_order_of_the_book():
    first_link = {}
    for i, f in enumerate(chapters()):
        for assignment in re.findall(r"\{download\}`[^`]*</_build/student/([\w]+)\.ipynb>`",
                                     (ROOT / f"{f}.md").read_text()):
            first_link.setdefault(assignment, i)
    order = sorted(first_link, key=lambda a: (first_link[a], a))
    assert order == sorted(first_link), f"assignments in the book's order: {order}"


def test_bibliography_parses_and_every_citation_has_an_entry():
    from pybtex.database import parse_file

    entries = parse_file(ROOT / "book" / "references.bib").entries  # raises on a malformed entry
    for f in toc_files():
        for group in re.findall(r"\{cite[pt]?\}`([^`]+)`", (ROOT / f"{f}.md").read_text()):
            for key in group.split(","):
                assert key.strip() in entries, f"{f} cites {key.strip()}, which is not in references.bib"


def course_lib_names() -> set[str]:
    names = set()
    for path in (ROOT / "course_lib").glob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names - {"main"}


def test_chapters_import_course_lib_instead_of_redefining_it():
    library = course_lib_names()
    for f in chapters():
        text = (ROOT / f"{f}.md").read_text()
        cells = [body for _, body in code_cells(text)]  # cell options stripped
        assert any("course_lib" in c for c in cells), f"{f} does not import course_lib"
        for body in cells:
            body = "\n".join(line for line in body.splitlines() if not line.startswith(("%", "!")))
            for node in ast.parse(body).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    assert node.name not in library, f"{f} redefines course_lib's {node.name}; import it instead"


@pytest.mark.slow
def test_site_publishes_the_student_version_of_every_assignment(built_book):

    sources = sorted(p.name for p in (ROOT / "assignments" / "source").iterdir() if p.is_dir())
    published = {p.name: p for p in (HTML / "_downloads").glob("*/*.ipynb")}
    for assignment in sources:
        assert f"{assignment}.ipynb" in published, f"{assignment} is not downloadable from the site"
        nb = nbformat.read(published[f"{assignment}.ipynb"], as_version=4)
        nbformat.validate(nb)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, f"{assignment}: answers leaked"
        assert "raise NotImplementedError()" in text


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors_and_executes_every_chapter(built_book):
    assert "build succeeded" in built_book.stdout
    for f in toc_files():
        page = HTML / f"{f}.html"
        assert page.exists(), f"{page} was not built"
    for f in chapters():
        page = (HTML / f"{f}.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "Traceback (most recent call last)" not in text, f"{f}: a cell raised"
        assert 'class="cell_output' in page, f"{f}: no cell was executed"
        assert "<p>|" not in page, f"{f}: a Markdown table a cell printed is shown as text"
        images = [i for i in re.findall(r"<img [^>]*>", page) if "_images/" in i]  # figures, not theme logos
        assert images, f"{f}: no figure"
        for img in images:
            src = re.search(r'src="([^"]+)"', img).group(1)
            assert (page_dir := (HTML / f).parent / src).exists(), f"{f}: missing image {page_dir}"
            assert re.search(r'alt="[^"]{20,}"', img), f"{f}: figure without alt text: {img[:120]}"


@pytest.mark.slow
def test_launch_buttons_open_each_chapter_as_a_notebook(built_book):
    """Binder (and JupyterHub, where _config.yml names a hub) open the chapter's MyST file (jupytext); Colab,
    which reads only .ipynb, opens the executed notebook published with the site, whose first cell installs
    course_lib where it is missing. No button points at a placeholder host."""
    from IPython.core.inputtransformer2 import TransformerManager

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    org_repo = config["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    for f in chapters():
        page = html.unescape((HTML / f"{f}.html").read_text())
        colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
        assert colab == [f"https://colab.research.google.com/github/{org_repo}/blob/gh-pages/_sources/{f}.ipynb"], colab
        assert re.search(rf'href="https://mybinder\.org/v2/gh/{org_repo}/main\?urlpath=lab/tree/{f}\.md"', page)
        hub = config["launch_buttons"].get("jupyterhub_url")
        assert ("hub/user-redirect/git-pull?" in page) == bool(hub), "a JupyterHub button needs jupyterhub_url"
        assert not re.search(r'href="https?://[^"]*\.(example\.(org|com|net)|invalid|test)[/"]', page), (
            f"{f}: a link points at a placeholder host")
        nb = nbformat.read(HTML / "_sources" / f"{f}.ipynb", as_version=4)
        nbformat.validate(nb)
        setup = nb.cells[0]
        assert "course-setup" in setup.metadata.get("tags", []), f"{f}: the published notebook has no setup cell"
        assert f"git+https://github.com/{org_repo}" in setup.source
        compile(TransformerManager().transform_cell(setup.source), f"{f} setup cell", "exec")
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{f}: notebook not executed"
        assert sum("course-setup" in c.metadata.get("tags", []) for c in nb.cells) == 1


def code_cells(text: str) -> list[tuple[str, str]]:
    """(options, body) of every code cell of a MyST notebook; options is the YAML or ``:tags:`` header."""
    cells = []
    for cell in re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S):
        header = re.match(r"(---\n.*?\n---\n|(?::[\w-]+:[^\n]*\n)+)", cell, re.S)
        options = header.group(0) if header else ""
        cells.append((options, cell[len(options):]))
    return cells


def claim_cells(text: str) -> list[str]:
    """The hidden cells (``remove-cell``) that check a sentence with ``claim(...)``."""
    return [body for options, body in code_cells(text) if "remove-cell" in options and "claim(" in body]


# The claim cells of each chapter when issue 12 was done; a chapter may gain claims, never silently lose them.
MIN_CLAIM_CELLS = {"book/feedforward": 2, "book/rnn": 4, "book/gradients": 4, "book/lstm": 4}


def test_every_chapter_backs_its_sentences_about_runs_with_claims():
    counts = {f: len(claim_cells((ROOT / f"{f}.md").read_text())) for f in chapters()}
    for f, n in counts.items():
        assert n >= MIN_CLAIM_CELLS.get(f, 1), (
            f"{f} has {n} hidden claim cells; a sentence about a run needs claim(...) in a remove-cell "
            "beside it (see CONTRIBUTING.md)")
        text = (ROOT / f"{f}.md").read_text()
        assert "from course_lib.claims import" in text, f"{f} does not import course_lib.claims"


def test_prose_numbers_come_from_glue_and_every_glued_name_is_defined():
    for f in chapters():
        text = (ROOT / f"{f}.md").read_text()
        used = set(re.findall(r"\{glue:text\}`([\w-]+)(?::[^`]*)?`", text))
        defined = set(re.findall(r"glue\(\s*f?[\"']([\w{}-]+)[\"']", text))
        patterns = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(d)) + "$") for d in defined]
        for name in used:
            assert any(p.match(name) for p in patterns), f"{f} shows {{glue:text}}`{name}` but never glues it"


def test_code_in_chapters_fits_the_page_column():
    for f in chapters():
        for _, body in code_cells((ROOT / f"{f}.md").read_text()):
            for line in body.splitlines():
                assert len(line) <= 88, f"{f}: a code line of {len(line)} characters (at most 88): {line!r}"


def test_a_failing_claim_fails_the_build():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["allow_errors"] is False, "a failing cell (a failing claim) must fail the build"


@pytest.mark.slow
def test_a_failing_claim_stops_the_execution_of_a_chapter(tmp_path):
    """The book executes chapters with nbclient (myst-nb); a claim the run does not support raises there."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    page = "\n".join([
        "---", "jupytext:", "  text_representation:", "    extension: .md", "    format_name: myst",
        "kernelspec:", "  display_name: Python 3", "  language: python", "  name: python3", "---", "",
        "```{code-cell} ipython3", "from course_lib.claims import claim", "accuracy = 0.4", "```", "",
        "The model learns the task.", "",
        "```{code-cell} ipython3", ":tags: [remove-cell]",
        'claim(accuracy > 0.9, "the model learns the task", accuracy=accuracy)', "```", "",
    ])
    nb = jupytext.reads(page, fmt="md:myst")
    assert len(claim_cells(page)) == 1
    with pytest.raises(CellExecutionError) as error:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                       ).execute()
    assert "ClaimError" in str(error.value) and "the model learns the task" in str(error.value)


def load_site_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_site", ROOT / "book" / "_ext" / "course_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_are_read_in_chunks_of_about_equal_cost():
    from sphinx.util.parallel import make_chunks

    balanced_order = load_site_extension().balanced_order
    costs = {"a": 11, "b": 141, "c": 350, "d": 0, "e": 205, "f": 0, "g": 47, "h": 85}
    docnames = sorted(costs)  # Sphinx's own order: a, b, c, d | e, f, g, h: 502 s against 337 s
    order = balanced_order(docnames, costs, 2)
    assert sorted(order) == docnames
    totals = [sum(costs[d] for d in chunk) for chunk in make_chunks(order, 2)]
    splits = [sum(costs[d] for d in half) for half in itertools.combinations(costs, 4)]
    assert max(totals) == min(max(s, sum(costs.values()) - s) for s in splits) == 431  # the best split
    assert balanced_order(docnames, {}, 2) == docnames  # no costs: the order is kept
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert set(config["course_site_read_costs"]) <= {f for f in toc_files()}


def test_the_execution_cache_exists_before_the_reading_processes_start(tmp_path, monkeypatch):
    """Two reading processes on an empty cache both created its tables; one build failed ("table nbproject
    already exists", a CI run from a fresh clone). The build script creates the cache before they start."""
    import importlib.util
    import sqlite3
    import subprocess

    spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    monkeypatch.setattr(build_book, "BUILD", tmp_path / "_build")
    monkeypatch.setattr(build_book, "generate_student_notebooks", lambda: None)
    seen = {}

    def fake_jupyter_book(cmd, **kwargs):
        db = tmp_path / "_build" / ".jupyter_cache" / "global.db"
        seen["tables"] = {row[0] for row in sqlite3.connect(db).execute("select name from sqlite_master")}
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(build_book.subprocess, "run", fake_jupyter_book)
    build_book.build(jobs=2)
    assert {"nbproject", "nbcache", "settings"} <= seen["tables"]
