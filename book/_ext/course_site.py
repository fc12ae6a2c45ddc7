"""Small fixes to the generated site, found by the browser tests (tests/test_site.py).

* sphinx-thebe (which Jupyter Book always loads) inserts its inline configuration script twice, and the
  second copy throws ``Identifier 'THEBE_JS_URL' has already been declared`` in every page (the copies
  differ only in a filename of ``None`` versus ``''``, so Sphinx's own de-duplication misses them): identical
  inline scripts are dropped here before each page is written.
* Colab opens only ``.ipynb`` files, and the chapters are MyST markdown. The theme copies each chapter's
  executed notebook to ``_sources/<page>.ipynb`` in the site; the Colab button is pointed at that notebook on
  the branch the site is published from (``course_site_published_branch``, default ``gh-pages``), and a first
  cell is added to it that installs ``course_lib`` from the repository when the notebook runs where the
  package is missing (a fresh Colab machine). The outputs are filled in from the execution cache where myst-nb
  left them out (pages whose outputs came from the cache).
* Accessibility (WCAG 2.1 AA, checked with axe-core by the browser tests): every code block that can scroll
  sideways is focusable (``tabindex="0"`` on each ``<pre>``, so a keyboard user can scroll it; the theme's
  script does the same, but only after the page has loaded), and the bibliography's entries use the role
  ``listitem`` inside sphinxcontrib-bibtex's ``role="list"`` (its ``doc-biblioentry`` is deprecated and not
  a list item).
* Parallel reading: Sphinx cuts the sorted list of pages into one chunk per process, so the chapters that take
  longest to execute could all land in one chunk and keep one core busy long after the other is idle.
  ``course_site_read_costs`` (seconds per page, measured) lets the pages be reordered before reading so that
  the chunks take about as long as each other.
"""

from __future__ import annotations

import re
from pathlib import Path

SETUP_TAG = "course-setup"


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def _accessible_body(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if not body:
        return
    body = re.sub(r"<pre(?![^>]*\btabindex=)(?=[\s>])", '<pre tabindex="0"', body)
    context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def _repository(app) -> tuple[str, str] | None:
    """(org, repo) of a GitHub repository_url, else None."""
    url = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    parts = url.split("/")
    if len(parts) < 5 or parts[2] != "github.com":
        return None
    return parts[3], parts[4]


def _colab_to_published_notebook(app, pagename, templatename, context, doctree):
    """Point the Colab launch button at the executed notebook published with the site."""
    repo = _repository(app)
    if repo is None or not context.get("ipynb_source"):
        return
    org, name = repo
    url = (f"https://colab.research.google.com/github/{org}/{name}/blob/"
           f"{app.config.course_site_published_branch}/_sources/{context['ipynb_source']}")
    for button in context.get("header_buttons", []):
        for item in button.get("buttons", []) if isinstance(button, dict) else []:
            if item.get("text") == "Colab":
                item["url"] = url


def setup_cell_source(app) -> str:
    repo = _repository(app)
    target = f"git+https://github.com/{repo[0]}/{repo[1]}" if repo else "course_lib"
    return (
        "# Setup: where course_lib is missing (a fresh Colab or Binder machine), install it from the course's\n"
        "# repository, keeping the machine's own torch, numpy and matplotlib (--no-deps: the package asks for the\n"
        "# torch it was tested with, and pip would replace Colab's GPU build). Where the course is installed\n"
        "# (its .venv), this does nothing.\n"
        "import importlib.util\n"
        "\n"
        "if importlib.util.find_spec(\"course_lib\") is None:\n"
        f"    %pip install --quiet --no-deps \"{target}\"\n"
    )


def _with_cached_outputs(app, nb):
    """The notebook with its outputs from the execution cache, if it is there.

    myst-nb writes the notebook it parsed, and when a page's outputs come from the cache it does not put them
    into that notebook (only freshly executed pages get them); so a rebuild with a warm cache would publish
    notebooks without outputs.
    """
    from contextlib import suppress

    from jupyter_cache import get_cache

    cache_path = app.config.nb_execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache")
    if not Path(cache_path).exists():
        return nb
    with suppress(KeyError):
        return get_cache(cache_path).merge_match_into_notebook(nb)[1]
    return nb


def _add_setup_cell(app, exception):
    """Complete every published chapter notebook: cached outputs, and the setup cell at the top (once)."""
    if exception is not None or app.builder.format != "html":
        return
    import nbformat

    source = setup_cell_source(app)
    for path in sorted(Path(app.outdir, "_sources").rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if nb.cells and SETUP_TAG in nb.cells[0].get("metadata", {}).get("tags", []):
            continue
        nb = _with_cached_outputs(app, nb)
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
        if nb.nbformat_minor < 5:  # cell ids arrived in nbformat 4.5
            cell.pop("id", None)
        nb.cells.insert(0, cell)
        nbformat.validate(nb)
        nbformat.write(nb, path)


# Extensions that Jupyter Book loads and that do not say whether Sphinx may read (and so execute) pages in
# parallel; Sphinx then reads serially, and under -W its warning fails the build. Each is safe: the numbering
# patch runs in the main process after reading, the MathJax one only sets a path, the LaTeX one acts on the
# LaTeX builder only. tools/build_book.py reads with --jobs processes (default 2).
PARALLEL_SAFE = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline", "sphinx_jupyterbook_latex")


def _declare_parallel_safe(app, config):
    for name in PARALLEL_SAFE:
        extension = app.extensions.get(name)
        if extension is not None:
            extension.parallel_read_safe = True
            extension.parallel_write_safe = True


def balanced_order(docnames: list[str], costs: dict[str, float], nproc: int) -> list[str]:
    """``docnames`` reordered so that Sphinx's chunks (``make_chunks``: consecutive runs of equal size) have
    about equal total cost: the costliest page first into the chunk with the least cost and room left."""
    from sphinx.util.parallel import make_chunks

    sizes = [len(chunk) for chunk in make_chunks(list(docnames), nproc)]
    chunks: list[list[str]] = [[] for _ in sizes]
    totals = [0.0] * len(sizes)
    for name in sorted(docnames, key=lambda d: (-costs.get(d, 0.0), d)):
        i = min((i for i in range(len(sizes)) if len(chunks[i]) < sizes[i]), key=lambda i: (totals[i], i))
        chunks[i].append(name)
        totals[i] += costs.get(name, 0.0)
    return [name for chunk in chunks for name in chunk]


def _balance_reading(app, env, docnames):
    if app.parallel > 1 and app.config.course_site_read_costs:
        docnames[:] = balanced_order(docnames, app.config.course_site_read_costs, app.parallel)


def setup(app):
    app.add_config_value("course_site_published_branch", "gh-pages", "html")
    app.add_config_value("course_site_read_costs", {}, "env")
    app.connect("env-before-read-docs", _balance_reading)
    app.connect("config-inited", _declare_parallel_safe)
    # early: Sphinx stops calling html-page-context handlers at the first one that returns a value
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    # late: after sphinx-book-theme has built the launch buttons (default priority 500)
    app.connect("html-page-context", _colab_to_published_notebook, priority=900)
    app.connect("html-page-context", _accessible_body, priority=900)
    app.connect("build-finished", _add_setup_cell)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
