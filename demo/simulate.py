"""Synthetic shop visitors, sent through the collector's real HTTP API with backdated timestamps.

Each visitor follows one persona (browse only, cart and leave, checkout and leave, buy once, buy again,
go quiet, read emails, a bot), so every built-in segment has members after the next rollup.
`plan_visitors` is pure (seeded randomness, `now` passed in); `send_visitors` does the HTTP.
"""

import base64
import json
import random
import urllib.request
import uuid
from datetime import UTC, datetime

from demo.catalog import PRODUCTS

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

#: persona -> share of visitors
PERSONAS = {
    "browser": 0.20,
    "cart_abandoner": 0.14,
    "checkout_abandoner": 0.10,
    "buyer": 0.14,
    "repeat_buyer": 0.10,
    "quiet": 0.12,
    "email_reader": 0.07,
    "email_ignorer": 0.06,
    "bot": 0.03,
    "visitor": 0.04,
}


class Visit:
    """Builds one visitor's messages, each a step later than the one before."""

    def __init__(self, rng, base_url, start, user_agent):
        self.rng = rng
        self.base_url = base_url
        self.at = start
        self.anonymous_id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.user_id = None
        self.user_agent = user_agent
        self.messages = []

    def _add(self, message, path="/demo/"):
        self.at += self.rng.randint(20_000, 180_000)
        message.update(
            anonymousId=self.anonymous_id,
            messageId=str(uuid.UUID(int=self.rng.getrandbits(128))),
            timestamp=iso(self.at),
        )
        if self.user_id:
            message["userId"] = self.user_id
        message["context"] = {
            "userAgent": self.user_agent,
            "page": {"url": self.base_url + path, "path": path},
            "library": {"name": "cohortly-demo", "version": "1"},
        }
        self.messages.append(message)

    def session(self, at):
        """Start a new session at `at` (more than 30 minutes after the last event)."""
        self.at = max(at, self.at + 31 * MINUTE)
        self._add({"type": "page", "properties": {"path": "/demo/", "url": self.base_url + "/demo/"}})

    def view(self, product):
        path = f"/demo/products/{product['product_id']}"
        self._add({"type": "page", "properties": {"path": path, "url": self.base_url + path}}, path)
        self._add(
            {"type": "track", "event": "Product Viewed", "properties": product_properties(product, self.base_url)}, path
        )

    def add(self, product):
        self._add(
            {
                "type": "track",
                "event": "Product Added",
                "properties": {**product_properties(product, self.base_url), "quantity": 1},
            },
            f"/demo/products/{product['product_id']}",
        )

    def checkout(self, products):
        value = sum(p["price"] for p in products)
        self._add(
            {
                "type": "track",
                "event": "Checkout Started",
                "properties": {
                    "value": value,
                    "revenue": value,
                    "currency": "EUR",
                    "products": [product_properties(p, self.base_url) for p in products],
                },
            },
            "/demo/checkout",
        )
        return value

    def order(self, products):
        value = self.checkout(products)
        if not self.user_id:
            self.identify()
        self._add(
            {
                "type": "track",
                "event": "Order Completed",
                "properties": {
                    "order_id": "o-" + uuid.UUID(int=self.rng.getrandbits(128)).hex[:10],
                    "revenue": value,
                    "total": value,
                    "currency": "EUR",
                    "products": [product_properties(p, self.base_url) for p in products],
                },
            },
            "/demo/checkout",
        )

    def identify(self):
        self.user_id = "cust-" + self.anonymous_id[:8]
        self._add(
            {
                "type": "identify",
                "traits": {"email": f"{self.user_id}@example.com", "first_name": self.rng.choice(FIRST_NAMES)},
            }
        )

    def email(self, event, at):
        saved, self.at = self.at, at
        self._add({"type": "track", "event": event, "properties": {"campaign": "autumn-sale"}})
        self.at = max(saved, self.at)


FIRST_NAMES = ["Ann", "Ben", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun"]


def product_properties(product, base_url):
    return {
        "product_id": product["product_id"],
        "name": product["name"],
        "category": product["category"],
        "price": product["price"],
        "currency": "EUR",
        "url": f"{base_url}/demo/products/{product['product_id']}",
    }


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_visitors(count, now, base_url, seed=7):
    """The messages of `count` synthetic visitors, persona by persona, all in the past of `now` (ms)."""
    rng = random.Random(seed)
    names = list(PERSONAS)
    weights = [PERSONAS[name] for name in names]
    # Every persona at least once (when count allows), then by weight.
    personas = names[:count] + rng.choices(names, weights, k=max(0, count - len(names)))
    return [message for persona in personas for message in _visitor(rng, persona, now, base_url).messages]


def _visitor(rng, persona, now, base_url):
    ua = BOT_UA if persona == "bot" else rng.choice((BROWSER_UA, BROWSER_UA, PHONE_UA))
    products = rng.sample(PRODUCTS, 3)
    if persona in ("browser", "bot"):
        visit = Visit(rng, base_url, now - rng.randint(2 * HOUR, 4 * DAY), ua)
        visit.session(visit.at)
        for product in products[: rng.randint(2, 3)]:
            visit.view(product)
    elif persona == "cart_abandoner":
        visit = Visit(rng, base_url, now - rng.randint(3 * HOUR, 3 * DAY), ua)
        visit.session(visit.at)
        visit.view(products[0])
        visit.add(products[0])
    elif persona == "checkout_abandoner":
        visit = Visit(rng, base_url, now - rng.randint(3 * HOUR, 3 * DAY), ua)
        visit.session(visit.at)
        visit.view(products[0])
        visit.add(products[0])
        visit.checkout(products[:1])
    elif persona == "buyer":
        visit = Visit(rng, base_url, now - rng.randint(1 * DAY, 20 * DAY), ua)
        visit.session(visit.at)
        visit.view(products[0])
        visit.add(products[0])
        visit.order(products[:1])
    elif persona == "repeat_buyer":
        visit = Visit(rng, base_url, now - rng.randint(25 * DAY, 50 * DAY), ua)
        visit.session(visit.at)
        visit.view(products[0])
        visit.add(products[0])
        visit.order(products[:1])
        visit.session(now - rng.randint(1 * DAY, 10 * DAY))
        visit.view(products[1])
        visit.add(products[1])
        visit.order(products[1:2])
    elif persona == "quiet":
        visit = Visit(rng, base_url, now - rng.randint(60 * DAY, 90 * DAY), ua)
        for _ in range(rng.randint(2, 3)):
            visit.session(visit.at + rng.randint(1 * DAY, 5 * DAY))
            visit.view(rng.choice(PRODUCTS))
    elif persona in ("email_reader", "email_ignorer"):
        visit = Visit(rng, base_url, now - rng.randint(50 * DAY, 70 * DAY), ua)
        visit.session(visit.at)
        visit.identify()
        visit.email("Email Delivered", now - 45 * DAY)
        visit.email("Email Delivered", now - 12 * DAY)
        if persona == "email_reader":
            visit.email("Email Opened", now - rng.randint(1 * DAY, 10 * DAY))
            visit.email("Email Link Clicked", now - rng.randint(1 * HOUR, 1 * DAY))
    else:
        visit = Visit(rng, base_url, now - rng.randint(1 * HOUR, 2 * DAY), ua)
        visit.session(visit.at)
    return visit


def send_visitors(collector_url, write_key, messages, batch_size=200, now=None):
    """POST the messages to `/v1/batch` in batches; returns how many the collector accepted."""
    accepted = 0
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    for start in range(0, len(messages), batch_size):
        body = {"batch": messages[start : start + batch_size], "sentAt": iso(now) if now else None}
        request = urllib.request.Request(
            collector_url.rstrip("/") + "/v1/batch",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": auth},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            accepted += json.load(response)["accepted"]
    return accepted
