"""A real gunicorn, started with the collector's own gunicorn settings, for any app of this repository."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUNICORN_CONF = os.path.join(ROOT, "core", "gunicorn_conf.py")


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c core/gunicorn_conf.py APP` on a free loopback port; a context manager."""

    def __init__(self, app, log_path, workers=2, env=None):
        self.app = app
        self.log_path = log_path
        self.workers = workers
        self.env = env or {}
        self.host, self.port = "127.0.0.1", free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.process = None

    def start(self, timeout=30.0):
        env = dict(os.environ, COHORTLY_BIND=f"{self.host}:{self.port}", COHORTLY_WORKERS=str(self.workers), **self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, self.app],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"gunicorn {self.app} did not come up; see {self.log_path}")
            time.sleep(0.05)
        return self

    def _healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def pids(self):
        """The master's and its workers' process ids."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        return [self.process.pid] + [int(pid) for pid in out.stdout.split()]

    def cpu_seconds(self):
        """CPU time (user + system) the master and its workers have used so far."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # a worker that just exited
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self, sig=signal.SIGTERM):
        """Stop the whole process group and wait for it."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
