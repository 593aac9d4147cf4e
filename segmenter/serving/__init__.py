"""The serving side: the REST API (`api`, `webhooks`, response `schemas`) and the dashboard (`dashboard`, `sessions`, `charts`)."""
