"""The serving side: the REST API (`api` and its resources, response `schemas`) and the dashboard (`dashboard`,
`sessions`, `charts`)."""
