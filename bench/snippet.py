"""Size of the built tracker, collector/static/c.js, raw, gzip and brotli, next to other trackers' figures.

    python -m bench.snippet

The other trackers are not downloaded: their sizes are the figures quoted in issue #7. Brotli needs the
`brotli` package (in the `test` extra); without it only gzip is printed. Exit status 1 when c.js is over
its budget (1,536 bytes gzip, as js-snippet/build.mjs checks).
"""

import gzip
import os
import sys

from bench.server import ROOT

SNIPPET = os.path.join(ROOT, "collector", "static", "c.js")
BUDGET_GZIP = 1536
#: name -> (gzip bytes, how the issue quotes it)
QUOTED = {
    "Plausible (script.js)": (1024, "< 1 KB"),
    "Umami (script.js)": (3 * 1024, "≈ 3 KB gzip"),
    "Segment analytics.js": (int(29.8 * 1024), "budget 29.8 KB gzip"),
}


def sizes(path=SNIPPET):
    """(raw, gzip -9, brotli q11 or None) sizes in bytes of the file at `path`."""
    with open(path, "rb") as file:
        code = file.read()
    try:
        import brotli
    except ImportError:
        compressed = None
    else:
        compressed = len(brotli.compress(code, quality=11))
    return len(code), len(gzip.compress(code, compresslevel=9, mtime=0)), compressed


def main():
    raw, gzipped, brotli_size = sizes()
    print(
        f"{os.path.relpath(SNIPPET, ROOT)}: {raw:,} B raw, {gzipped:,} B gzip"
        + (f", {brotli_size:,} B brotli" if brotli_size is not None else " (brotli: install the `brotli` package)")
        + f"; budget {BUDGET_GZIP:,} B gzip"
    )
    print()
    print("| tracker | gzip bytes | source | Cohortly c.js (gzip) as a share of it |")
    print("|---|---:|---|---:|")
    print(f"| Cohortly c.js | {gzipped:,} | measured | 100% |")
    for name, (size, quoted) in QUOTED.items():
        print(f"| {name} | ~{size:,} | quoted in issue #7: {quoted} | {gzipped / size:.0%} |")
    return 0 if gzipped <= BUDGET_GZIP else 1


if __name__ == "__main__":
    sys.exit(main())
