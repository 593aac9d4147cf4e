"""Gunicorn settings for `cohortly serve`; each can be overridden on gunicorn's command line.

The worker is gthread with a deadline on reading each request (core/worker.py): a client that trickles
its request holds one thread for at most READ_TIMEOUT seconds. Threads cost little while they wait, so each
worker has 64: up to workers × 64 slow clients at once leave the others answered at once; past that, new
requests wait until the slow ones time out (README: "Slow clients")."""

import multiprocessing
import os

bind = os.environ.get("COHORTLY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("COHORTLY_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "core.worker.ReadDeadlineWorker"
threads = int(os.environ.get("COHORTLY_THREADS", 64))
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
