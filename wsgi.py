"""The WSGI entry point: `gunicorn wsgi:app`."""
from collector import create_app

app = create_app()
