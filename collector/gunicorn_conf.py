"""Gunicorn settings for `cohortly serve`; each can be overridden on gunicorn's command line."""
import multiprocessing
import os

bind = os.environ.get("COHORTLY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("COHORTLY_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("COHORTLY_THREADS", 4))
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
