"""/api/v1/docs loads ReDoc from the collector itself: the pinned, vendored bundle, cached for a year."""

import re


def test_the_docs_page_references_only_its_own_origin(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert not re.search(r"(https?:)?//", page.text.replace("<!--", "").split("-->")[-1])
    urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    # ReDoc's sidebar would fetch a logo from Redocly's CDN: the page's policy allows its own origin only.
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["img-src"] == "'self' data:"
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"


def test_the_redoc_bundle_is_served_with_a_long_immutable_cache(client):
    [script] = re.findall(r'<script src="([^"]+)"', client.get("/api/v1/docs").text)
    answer = client.get(script)
    body = answer.get_data()
    answer.close()
    assert answer.status_code == 200 and answer.mimetype == "text/javascript"
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"redoc" in body[:4096].lower() and len(body) > 500_000


def test_only_the_bundle_is_served_from_the_assets_path(client):
    for name in ("redoc.LICENSE.txt", "..%2Fapi.py", "nope.js"):
        answer = client.get(f"/api/v1/assets/{name}")
        assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found", name
