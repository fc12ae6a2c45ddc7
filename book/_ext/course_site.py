"""Small fixes to the generated site, found by the browser tests (tests/test_site.py).

* sphinx-thebe (which Jupyter Book always loads) inserts its inline configuration script twice, and the
  second copy throws ``Identifier 'THEBE_JS_URL' has already been declared`` in every page (the copies
  differ only in a filename of ``None`` versus ``''``, so Sphinx's own de-duplication misses them): identical
  inline scripts are dropped here before each page is written.
"""

from __future__ import annotations


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


def setup(app):
    # early: Sphinx stops calling html-page-context handlers at the first one that returns a value
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
