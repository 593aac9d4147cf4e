"""Where a gunicorn app spends its CPU under load: py-spy samples of every worker, summed by function.

Used by `python -m bench.ingest --profile`; needs the `py-spy` package (in the `test` extra) and the right
to trace the workers (root, or ptrace_scope 0).
"""

import re
import shutil
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager

FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:]+):\d+\)$")
OURS = re.compile(r"(^|/)(collector|segmenter)/[^/]+\.py$")
#: Besides our own functions, the library functions worth naming: the doors the collector goes through.
WATCH = re.compile(
    r"^(Schema\.load|Connection\.execute|Engine\.begin|Connection\.begin|Transaction\.commit|_GeneratorContextManager\.__enter__|"
    r"_ConnectionFairy\._checkout|_ConnectionRecord\.checkout|Pool\.connect|dumps|loads|jsonify|"
    r"ThreadWorker\.handle_request|Flask\.wsgi_app|Response\.write|DefaultDialect\.do_executemany|"
    r"DefaultDialect\.do_execute|DefaultDialect\.do_commit|DefaultExecutionContext\._init_compiled)$"
)


def py_spy():
    """The py-spy executable beside this Python, or on PATH; None when not installed."""
    beside = shutil.which("py-spy", path=sys.prefix + "/bin")
    return beside or shutil.which("py-spy")


@contextmanager
def sampling(pid, seconds, out_path, rate=200):
    """Record py-spy samples of `pid` and its subprocesses for `seconds`, into `out_path` (collapsed stacks)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    spy = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            str(rate),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            out_path,
            "--nonblocking",
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        try:
            spy.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=10)


def summarise(path, top=25):
    """Lines `share  function (file)` for the watched functions, by share of all samples (inclusive)."""
    inclusive, total = Counter(), 0
    with open(path) as samples:
        for line in samples:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            total += int(count)
            seen = set()
            for frame in stack.split(";"):
                match = FRAME.match(frame)
                if not match:
                    continue
                name, file = match["function"], match["file"]
                key = f"{name} ({file.split('/site-packages/')[-1].split('/work/main/')[-1]})"
                if key not in seen and (OURS.search(file) or WATCH.search(name)):
                    seen.add(key)
                    inclusive[key] += int(count)
    if not total:
        return ["(no samples: could py-spy attach?)"]
    return [f"{100 * n / total:5.1f}%  {key}" for key, n in inclusive.most_common(top)]
