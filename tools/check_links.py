"""Check the external links of the built website without ever failing an offline build.

    python tools/check_links.py [_build/html] [--timeout 5] [--strict]

Collects every ``http(s)://`` link and image source from the HTML pages, asks each address once (HEAD, then
GET if HEAD is refused) and prints one line per address: ``ok``, ``broken`` (the server answered with an
error status) or ``unreachable`` (no answer: offline, DNS failure, time-out). The exit status is 0 unless
``--strict`` is given and some link is *broken*; unreachable links never fail, so the check is safe on an
offline machine and still catches dead links where a network exists.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LINK = re.compile(r'(?:href|src)="(https?://[^"#]+)[^"]*"')


def external_links(html_dir: Path) -> dict[str, set[str]]:
    """Address -> the pages that link it."""
    links: dict[str, set[str]] = {}
    for page in sorted(html_dir.rglob("*.html")):
        for url in LINK.findall(page.read_text(errors="replace")):
            links.setdefault(url.replace("&amp;", "&"), set()).add(page.relative_to(html_dir).as_posix())
    return links


def check(url: str, timeout: float) -> tuple[str, str]:
    """('ok' | 'broken' | 'unreachable', detail) for one address."""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "rnn-course-linkcheck"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return "ok", str(response.status)
        except urllib.error.HTTPError as exc:
            if method == "HEAD" and exc.code in (403, 405, 501):
                continue  # some servers refuse HEAD; ask again with GET
            return "broken", f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return "unreachable", str(getattr(exc, "reason", exc))
    return "broken", "refused HEAD and GET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", default=Path(__file__).resolve().parent.parent / "_build" / "html",
                        type=Path)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 if any link is broken")
    args = parser.parse_args(argv)
    if not args.html_dir.is_dir():
        print(f"error: {args.html_dir} does not exist; build the book first (make book)", file=sys.stderr)
        return 2
    links = external_links(args.html_dir)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(links, pool.map(lambda u: check(u, args.timeout), links), strict=True))
    counts = {"ok": 0, "broken": 0, "unreachable": 0}
    for url in sorted(links):
        status, detail = results[url]
        counts[status] += 1
        print(f"{status:<11} {url}  ({detail}; linked from {', '.join(sorted(links[url])[:3])})")
    print(f"{len(links)} external links: {counts['ok']} ok, {counts['broken']} broken, "
          f"{counts['unreachable']} unreachable")
    return 1 if args.strict and counts["broken"] else 0


if __name__ == "__main__":
    sys.exit(main())
