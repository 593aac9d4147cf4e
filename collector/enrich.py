"""Pure enrichment of validated messages into event rows: skew, user agent, IP, UTM; and the bounds on
times and amounts a row may hold."""

import ipaddress
import uuid
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from user_agents import parse as parse_ua

from core.times import to_ms

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
SHORT = 200
#: Times a client sends must lie in [2000-01-01, 2100-01-01) UTC, and so must the event time after skew
#: correction: later stages render and subtract times, and a year 1 or 9999 breaks them.
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
#: Property amounts the rollup sums or multiplies (in cents, as BIGINT): |amount| <= MAX_AMOUNT currency units,
#: 0 <= quantity <= MAX_QUANTITY. Checked in `properties` and in each item of `properties.products`.
MAX_AMOUNT = 1_000_000_000
MAX_QUANTITY = 10_000
AMOUNT_KEYS = frozenset(("price", "revenue", "total", "value", "subtotal", "tax", "shipping", "discount"))
NUMBER_KEYS = AMOUNT_KEYS | {"quantity", "products"}


class Refused(ValueError):
    """A valid message whose content Cohortly will not store: `code`, `message`, `fields` for the answer."""

    def __init__(self, code, message, fields=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


def event_time(message, sent_at_ms, received_at_ms):
    """The event's time on the server's clock (ms); `Refused` when a client time or the result is out of range.

    `sent_at_ms` is the batch's `sentAt` (a message's own `sentAt` wins).
    """
    for name in TIME_FIELDS:
        moment = message.get(name)
        if moment is not None and not EARLIEST_MS <= to_ms(moment) < LATEST_MS:
            raise Refused(
                "invalid_timestamp",
                f"`{name}` must lie between 2000-01-01 and 2100-01-01 (UTC).",
                {name: ["Out of range."]},
            )
    moment = message.get("timestamp") or message.get("originalTimestamp")
    sent_at = message.get("sentAt")
    if sent_at is None and sent_at_ms is not None and not EARLIEST_MS <= sent_at_ms < LATEST_MS:
        raise Refused(
            "invalid_timestamp",
            "The batch's `sentAt` must lie between 2000-01-01 and 2100-01-01 (UTC).",
            {"sentAt": ["Out of range."]},
        )
    at = correct_skew(to_ms(moment) if moment else None, to_ms(sent_at) if sent_at else sent_at_ms, received_at_ms)
    if at < EARLIEST_MS:
        raise Refused(
            "invalid_timestamp",
            "Corrected for the client's clock (`receivedAt - (sentAt - timestamp)`), "
            "the event time falls before 2000-01-01.",
            {"timestamp": ["Out of range after skew correction."]},
        )
    return at


def check_amounts(properties):
    """`Refused` when an amount or quantity the rollup sums is out of range (see MAX_AMOUNT, MAX_QUANTITY)."""
    if type(properties) is not dict or properties.keys().isdisjoint(NUMBER_KEYS):
        return  # the common message: one set test
    _check_item(properties, "properties")
    products = properties.get("products")
    if type(products) is list:
        for index, item in enumerate(products):
            if type(item) is dict:
                _check_item(item, f"properties.products[{index}]")


def _check_item(item, where):
    for key in AMOUNT_KEYS.intersection(item):
        value = item[key]
        if type(value) in (int, float) and not -MAX_AMOUNT <= value <= MAX_AMOUNT:
            raise Refused(
                "out_of_range",
                f"`{where}.{key}` must be a number from -{MAX_AMOUNT:,} to {MAX_AMOUNT:,}.",
                {f"{where}.{key}": ["Out of range."]},
            )
    value = item.get("quantity")
    if type(value) in (int, float) and not 0 <= value <= MAX_QUANTITY:
        raise Refused(
            "out_of_range",
            f"`{where}.quantity` must be a number from 0 to {MAX_QUANTITY:,}.",
            {f"{where}.quantity": ["Out of range."]},
        )


def correct_skew(timestamp_ms, sent_at_ms, received_at_ms):
    """The event time on the server's clock: `receivedAt - (sentAt - timestamp)`, never in the future.

    >>> correct_skew(1_000, 1_500, 10_000)
    9500
    """
    if timestamp_ms is None:
        return received_at_ms
    if sent_at_ms is not None:
        timestamp_ms = received_at_ms - (sent_at_ms - timestamp_ms)
    return min(timestamp_ms, received_at_ms)


@lru_cache(maxsize=4096)
def describe_user_agent(user_agent):
    """(browser, os, device, is_bot) of a User-Agent string; cached, parsing costs ~2 ms."""
    if not user_agent:
        return None, None, None, False
    ua = parse_ua(user_agent[:1000])
    if ua.is_bot:
        device = "bot"
    elif ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return ua.browser.family[:100], ua.os.family[:100], device, bool(ua.is_bot)


def truncate_ip(ip):
    """The network part of an IP: IPv4 to /24, IPv6 to /48 (6to4 and Teredo: their IPv4 to /24); None when not an IP.

    >>> truncate_ip("203.0.113.77")
    '203.0.113.0'
    >>> truncate_ip("2002:cb00:714d::1")
    '203.0.113.0'
    """
    try:
        return _truncate_ip(ip)
    except TypeError:  # unhashable, so not an IP
        return None


# Every message of a request shares its IP: cache the parse (~15 µs) instead of repeating it per message.
@lru_cache(maxsize=4096, typed=True)
def _truncate_ip(ip):
    try:
        address = ipaddress.ip_address(ip)
    except (TypeError, ValueError):
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    elif address.version == 6 and (address.sixtofour or address.teredo):
        # 6to4 (2002::/16) holds the client's IPv4 in bits 16-48, Teredo (2001::/32) in its last 32 bits:
        # keep only that IPv4's /24, as for any IPv4 client.
        address = address.sixtofour or address.teredo[1]
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def utm_of(campaign, url):
    """UTM parameters from `context.campaign`, else from the page URL's query."""
    if isinstance(campaign, dict) and campaign:
        found = {key: campaign.get("name" if key == "campaign" else key) for key in UTM_KEYS}
    elif isinstance(url, str) and "utm_" in url:
        query = parse_qs(urlsplit(url).query)
        found = {key: (query.get("utm_" + key) or [None])[0] for key in UTM_KEYS}
    else:
        return {}
    return {"utm_" + key: _short(value) for key, value in found.items() if _short(value)}


def merge_envelope(message, context, integrations):
    """A batch's top-level context/integrations under each message's own (message wins)."""
    for key, shared in (("context", context), ("integrations", integrations)):
        if shared:
            message[key] = {**shared, **(message.get(key) or {})}
    return message


def build_row(message, site_id, received_at_ms, sent_at_ms, request_ip, request_ua, store_ip=True):
    """The `events` row of one validated message (no raw IP, no user agent string); `Refused` when its
    times or amounts are out of range."""
    check_amounts(message.get("properties"))
    at = event_time(message, sent_at_ms, received_at_ms)
    context = dict(message.get("context") or {})
    properties = message.get("properties")
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    page_props = properties if message["type"] == "page" and isinstance(properties, dict) else {}

    def page_field(name):
        value = page.get(name, page_props.get(name))
        return value if isinstance(value, str) else None

    user_agent = context.pop("userAgent", None)
    context_ip = context.pop("ip", None)
    browser, os_name, device, is_bot = describe_user_agent(user_agent if isinstance(user_agent, str) else request_ua)
    url = page_field("url")
    row = {
        "site_id": site_id,
        "message_id": message.get("messageId") or str(uuid.uuid4()),
        "type": message["type"],
        "event": message.get("event"),
        "name": message.get("name"),
        "anonymous_id": message.get("anonymousId"),
        "user_id": message.get("userId"),
        "previous_id": message.get("previousId"),
        "group_id": message.get("groupId"),
        "url": url,
        "path": page_field("path"),
        "referrer": page_field("referrer"),
        "title": page_field("title"),
        "properties": properties,
        "traits": _traits(message),
        "context": context or None,
        "browser": browser,
        "os": os_name,
        "device": device,
        "is_bot": is_bot,
        "ip": (truncate_ip(context_ip) or truncate_ip(request_ip)) if store_ip else None,
        "timestamp": at,
        "received_at": received_at_ms,
    }
    row.update({f"utm_{key}": None for key in UTM_KEYS})
    row.update(utm_of(context.get("campaign"), url))
    return row


def _traits(message):
    """The message's traits; for an identify without any, its `context.traits` (where RudderStack's JavaScript
    SDK v3 sends an identify's traits)."""
    traits = message.get("traits")
    if traits is None and message["type"] == "identify":
        in_context = (message.get("context") or {}).get("traits")
        return in_context if isinstance(in_context, dict) else None
    return traits


def redact(raw):
    """A rejected message as it may be kept in bad_rows: without a raw IP (`context.ip`, `ip`, `request_ip`) or
    User-Agent string (`context.userAgent`, `userAgent`), which events never keep either."""
    if not isinstance(raw, dict):
        return raw
    kept = {key: value for key, value in raw.items() if key not in ("request_ip", "ip", "userAgent")}
    context = kept.get("context")
    if isinstance(context, dict) and ("ip" in context or "userAgent" in context):
        kept["context"] = {key: value for key, value in context.items() if key not in ("ip", "userAgent")}
    return kept


def _short(value):
    return value[:SHORT] if isinstance(value, str) and value else None
