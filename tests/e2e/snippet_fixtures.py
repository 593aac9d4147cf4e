"""Helpers of the tracker's browser tests: the test pages served on their own origin, Chromium's settings, and a
site whose pages carry the tracker. The fixtures over them are in tests/e2e/conftest.py."""

import functools
import http.server
import os
import threading
import time

from core import sites
from core.db import write_engine
from tests.helpers.live import free_port, wait_for

PAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pages")
BUILD = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "collector", "static", "c.js"
)
# Other vendors' browser libraries, installed from tests/e2e/browser_sdks/package-lock.json: served by the pages'
# server (as a site bundling them would), so that no page needs a CDN.
SDKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_sdks", "node_modules")
VENDOR = {
    "/vendor/analytics-next.js": os.path.join(SDKS, "@segment", "analytics-next", "dist", "umd", "index.js"),
    # RudderStack's builds with their plugins bundled (none fetched): for current browsers, and for legacy ones.
    "/vendor/rudder-analytics-modern.js": os.path.join(
        SDKS, "@rudderstack", "analytics-js", "dist", "npm", "modern", "bundled", "umd", "index.js"
    ),
    "/vendor/rudder-analytics-legacy.js": os.path.join(
        SDKS, "@rudderstack", "analytics-js", "dist", "npm", "legacy", "bundled", "umd", "index.js"
    ),
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/e2e/pages; in an .html file `{{snippet}}` becomes the tracker's script tag for this test."""

    def do_GET(self):
        path = self.translate_path(self.path)
        if self.path.split("?")[0] == "/c.js":  # the shipped build, as a site proxying it first-party would
            path, kind = BUILD, "text/javascript"
        elif self.path.split("?")[0] in VENDOR:
            path, kind = VENDOR[self.path.split("?")[0]], "text/javascript"
        elif path.endswith(".html") and os.path.isfile(path):
            kind = "text/html"
        else:
            return super().do_GET()
        with open(path, encoding="utf-8") as file:
            body = file.read().replace("{{snippet}}", self.server.snippet_tag).encode()
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PageServer:
    """The test pages on http://127.0.0.1:PORT, a different origin from the collector's."""

    def __init__(self):
        handler = functools.partial(PageHandler, directory=PAGES)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.httpd.daemon_threads = True
        self.httpd.snippet_tag = ""
        self.origin = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def use_snippet(self, src, write_key, **data):
        """Pages load the tracker from `src` with data-key and the other data-* attributes given (None: left out)."""
        attrs = {"key": write_key, "interval": "200", **data}
        rendered = " ".join(f'data-{name}="{value}"' for name, value in attrs.items() if value is not None)
        self.httpd.snippet_tag = f'<script defer src="{src}" {rendered}></script>'

    def url(self, path):
        return self.origin + path

    def start(self):
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


# Logs every /v1/batch request a page makes and how it ended, in the page's own localStorage key (so the log
# survives reloads and needs no round trip while the page goes away). Playwright's request events lose keepalive
# requests and report them aborted when the page goes away. A request that a page did not see end (e.g. a
# keepalive one at pagehide) keeps status null.
FETCH_LOG = """(() => {
  const original = window.fetch;
  const key = "__batches." + Math.random().toString(36).slice(2);
  const log = [];
  const save = () => { try { localStorage[key] = JSON.stringify(log); } catch (e) {} };
  window.fetch = function (url, options) {
    const answer = original.apply(this, arguments);
    if (String(url).includes("/v1/batch")) {
      const entry = {ids: JSON.parse(options.body).batch.map((m) => m.messageId), status: null};
      log.push(entry);
      save();
      answer.then((r) => { entry.status = r.status; save(); }, () => { entry.status = 0; save(); });
    }
    return answer;
  };
})();"""
READ_LOG = "Object.keys(localStorage).filter(k => k.startsWith('__batches.')).flatMap(k => JSON.parse(localStorage[k]))"


class Tracked:
    """A site on the live collector whose pages carry the tracker, browser contexts, and their batch requests."""

    def __init__(self, collector, server, browser, name="shop"):
        self.collector = collector
        self.server = server
        self.browser = browser
        # The collector may be writing as the site is made (the pages of the test before, closing, send what they
        # hold): on SQLite, a read-then-write transaction must take the write lock up front, waiting for it.
        self.site = sites.create_site(write_engine(collector.engine), name, [server.origin])
        self.contexts = []
        self.errors = []  # uncaught errors and console errors seen by pages
        self.content_types = set()  # of the /v1/batch requests
        self.use()

    def use(self, src=None, **data):
        """Set the tracker's source (default: the collector's /c.js) and data-* attributes for pages loaded
        from now on; data-interval is 200 ms unless given."""
        self.server.use_snippet(src or self.collector.url + "/c.js", self.site["write_key"], **data)

    def new_page(self, init_script=None, jitter=None):
        """A page in a new browser context (its own localStorage), its batches logged and errors watched.
        jitter: what the page's Math.random returns, so that the tracker's backoff after a failure is that share of
        its ceiling (2, 4, 8 ... s) instead of a random one."""
        context = self.browser.new_context()
        self.contexts.append(context)
        context.add_init_script(FETCH_LOG)
        context.on(
            "request",
            lambda request: _is_batch(request) and self.content_types.add(request.headers.get("content-type")),
        )
        if jitter is not None:
            context.add_init_script(f"Math.random = () => {float(jitter)};")
        if init_script:
            context.add_init_script(init_script)
        return self.open_in(context)

    def open_in(self, context):
        """Another page (tab) in `context`."""
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda msg: (
                msg.type == "error"
                and "Failed to load resource" not in msg.text
                and "net::" not in msg.text
                and self.errors.append(msg.text)
            ),
        )
        return page

    def requests(self):
        """Every /v1/batch request of the open contexts: {"ids": messageIds, "status": HTTP status, 0 for a
        network failure, None if the page did not see it end}."""
        logs = []
        for context in self.contexts:
            pages = [page for page in context.pages if not page.is_closed()]
            if pages:
                logs += pages[0].evaluate(READ_LOG)
        return logs

    def sent_in_order(self):
        """The message ids the open pages sent, each once, in the order they sent them: meaningful for one page
        load (each load logs under a key of its own, and keys come back in no set order)."""
        return list(dict.fromkeys(mid for r in self.requests() for mid in r["ids"]))

    def failed(self):
        """The message ids of each request that failed at the network level."""
        return [r["ids"] for r in self.requests() if r["status"] == 0]

    def answered(self):
        """(message ids, status) of each request that got an HTTP answer."""
        return [(r["ids"], r["status"]) for r in self.requests() if r["status"]]

    def times_sent(self, message_id):
        """How many requests carrying `message_id` may have been stored: those answered 2xx, and those whose end
        the page did not see (e.g. a keepalive one at pagehide). A network failure, or an answer of 429 or 503
        (a busy database on a loaded machine), stores nothing: the collector stores a request whole or not at all."""
        return sum(
            r["ids"].count(message_id) for r in self.requests() if r["status"] is None or 200 <= r["status"] < 300
        )

    def events(self, **match):
        """Stored events of the site whose columns equal `match`."""
        return [e for e in self.collector.events(self.site["site_id"]) if all(e.get(k) == v for k, v in match.items())]

    def pump(self, seconds=0.05):
        """Let Playwright deliver browser events (route handlers, request events) while a test waits."""
        pages = [page for context in self.contexts for page in context.pages if not page.is_closed()]
        if pages:
            pages[0].wait_for_timeout(seconds * 1000)
        else:
            time.sleep(seconds)

    def poll(self, predicate, timeout=15, message="condition"):
        """Poll `predicate` (pumping the browser in between) until it is truthy; fail after `timeout` seconds."""

        def check():
            result = predicate()
            if not result:
                self.pump()
            return result

        return wait_for(check, timeout=timeout, interval=0, message=message)

    def wait_for_events(self, count, timeout=15, **match):
        """Wait until at least `count` matching events are stored; return them."""

        def found():
            events = self.events(**match)
            return events if len(events) >= count else None

        return self.poll(found, timeout=timeout, message=f"{count} stored events matching {match}")

    def wait_for_event(self, event, timeout=15):
        """The one stored track event named `event`, once it is there."""
        (stored,) = self.wait_for_events(1, timeout=timeout, event=event)
        return stored

    def close(self):
        for context in self.contexts:
            context.close()


def _is_batch(request):
    return request.method == "POST" and request.url.split("?")[0].endswith("/v1/batch")


def stored_keys(page):
    """The tracker's localStorage keys on `page`."""
    return page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('cohortly.'))")
