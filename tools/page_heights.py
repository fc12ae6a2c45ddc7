"""How tall each page of a built website is, in CSS pixels, in a 1280-px-wide browser window.

A page is one sitting: the course keeps each under ``--limit`` pixels (15,000 by default). Used by the site test
(``tests/test_site.py``) and by chapter authors on a build of their own pages::

    python tools/page_heights.py _build/html             # every page, tallest first; exit 1 above the limit
    python tools/page_heights.py /tmp/out/_build/html --limit 15000

Needs Chromium (Debian: ``apt-get install chromium``) and Playwright (installed by requirements.txt).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LIMIT = 15_000
WIDTH, HEIGHT = 1280, 900
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def site_pages(html: Path) -> list[str]:
    found = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html") if "_static" not in p.parts)
    return [p for p in found if p not in ("index.html", "genindex.html", "search.html")]


def page_heights(html: Path, browser=None) -> dict[str, int]:
    """``{page: height in px}`` for every page under ``html``, each loaded at 1280 x 900 with math typeset."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        if browser is not None:
            return {name: _height(browser, base + name) for name in site_pages(html)}
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
            try:
                return {name: _height(b, base + name) for name in site_pages(html)}
            finally:
                b.close()
    finally:
        server.shutdown()


def _height(browser, url: str) -> int:
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        page.goto(url, wait_until="networkidle")
        if page.evaluate("() => !!document.querySelector('.math')"):
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=20000)
            page.evaluate("() => MathJax.startup.promise")
        return int(page.evaluate("() => Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
    finally:
        page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args(argv)
    heights = page_heights(args.html)
    for name, h in sorted(heights.items(), key=lambda kv: -kv[1]):
        print(f"{h:>8,} px  {h / HEIGHT:5.1f} screens  {name}{'   OVER THE LIMIT' if h > args.limit else ''}")
    return 1 if any(h > args.limit for h in heights.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
