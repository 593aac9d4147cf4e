"""Request bodies for load: realistic Segment batches with a unique messageId per message.

A body is made by %-formatting a JSON template with the ids, so the client spends microseconds, not a
`json.dumps`, per request.
"""

import base64
import json

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)


def message(index):
    """One `Product Viewed` track message as analytics.js sends it (~650 bytes), its messageId a placeholder.

    One message in ten comes from a campaign landing page (UTM parameters in the URL), as on a real shop.
    """
    product = index % 50
    query = "?utm_source=news&utm_medium=email&utm_campaign=spring" if index % 10 == 0 else ""
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "@ID@",
        "anonymousId": f"anon-{index % 97}",
        "timestamp": "2026-01-15T10:00:00.000Z",
        "properties": {
            "product_id": f"sku-{product}",
            "name": f"Product {product}",
            "category": ("Shoes", "Bags", "Hats")[product % 3],
            "price": 19.5 + product,
            "currency": "EUR",
            "url": f"https://shop.example/p/{product}",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "page": {
                "url": f"https://shop.example/p/{product}{query}",
                "path": f"/p/{product}",
                "referrer": "https://shop.example/",
                "title": f"Product {product} - Shop",
            },
            "userAgent": USER_AGENTS[index % len(USER_AGENTS)],
            "locale": "en-GB",
        },
    }


def batch_template(size):
    """A `/v1/batch` body with `size` messages, as a %-format string with `size` %s slots for the ids."""
    body = {"batch": [message(i) for i in range(size)], "sentAt": "2026-01-15T10:00:01.000Z"}
    text = json.dumps(body, separators=(",", ":")).replace("%", "%%")
    return text.replace('"@ID@"', '"%s"')


def bodies(prefix, sizes, limit):
    """Up to `limit` (key, body bytes, message ids) with ids `{prefix}-{n}-{i}`; the key is the request's n.

    `sizes` is the number of events per request, or a tuple of them used in turn.
    """
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    templates = [batch_template(size) for size in sizes]
    for n in range(limit):
        size = sizes[n % len(sizes)]
        ids = tuple(f"{prefix}-{n}-{i}" for i in range(size))
        yield n, (templates[n % len(sizes)] % ids).encode(), ids


def keyed(items, ids_by_key):
    """(key, body) pairs for `bench.load.drive`, remembering each key's message ids in `ids_by_key`."""
    for key, body, ids in items:
        ids_by_key[key] = ids
        yield key, body


def basic_auth(write_key):
    """The Authorization header a Segment SDK sends: the write key as the Basic user name."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
