"""Loading one Segment message: a plain-Python check for the common valid message, marshmallow for the rest.

marshmallow visits a message's fields one Python call at a time (~50 µs a message here); `quick_load` does
the same checks inline (~5 µs). It only ever says yes: a message it does not positively accept goes to
`schemas.load_message`, which gives the verdict and the error messages. A property test holds the two to
the same verdicts and the same loaded values.
"""

from datetime import UTC, datetime

from collector.schemas import ID_LENGTH, TYPES, load_message

_NO = object()  # "not accepted here": marshmallow decides


def _id(value):
    kind = type(value)
    if kind is str:
        if not value or value.isspace():
            return None  # blank: absent, as schemas.Id says
        return value if len(value) <= ID_LENGTH else _NO
    if value is None:
        return None
    if kind is int or kind is float:
        try:
            value = str(value)
        except ValueError:  # an int too long to print: let marshmallow raise what it raises
            return _NO
        return value if len(value) <= ID_LENGTH else _NO
    return _NO


def _text(limit):
    def check(value):
        if value is None or (type(value) is str and len(value) <= limit):
            return value
        return _NO

    return check


def _string(value):
    return value if value is None or type(value) is str else _NO


def _mapping(value):
    if value is None:
        return None
    return dict(value) if type(value) is dict else _NO


def _moment(value):
    if value is None:
        return None
    if type(value) is not str:
        return _NO
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _NO
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _raw(value):
    return value


#: The fields of `schemas.MessageSchema` by their JSON name, each with its check (a test keeps them equal).
CHECKS = {
    "messageId": _id,
    "userId": _id,
    "anonymousId": _id,
    "previousId": _id,
    "groupId": _id,
    "rudderId": _id,
    "event": _text(ID_LENGTH),
    "name": _text(ID_LENGTH),
    "category": _text(ID_LENGTH),
    "channel": _text(50),
    "writeKey": _string,
    "properties": _mapping,
    "traits": _mapping,
    "context": _mapping,
    "integrations": _mapping,
    "options": _mapping,
    "_metadata": _mapping,
    "timestamp": _moment,
    "originalTimestamp": _moment,
    "sentAt": _moment,
    "receivedAt": _raw,
    "version": _raw,
}
_REQUIRED = {"alias": ("previousId", "userId"), "track": ("event",), "group": ("groupId",)}


def quick_load(raw):
    """`raw` loaded as `schemas.load_message` loads it, or None when this check does not accept it."""
    if type(raw) is not dict or raw.get("type") not in TYPES or type(raw["type"]) is not str:
        return None
    message = {}
    for key, value in raw.items():
        if key == "type":
            message[key] = value
            continue
        check = CHECKS.get(key)
        if check is None:
            return None
        value = check(value)
        if value is _NO:
            return None
        message[key] = value
    kind = message["type"]
    if kind != "alias" and not (message.get("userId") or message.get("anonymousId")):
        return None
    if not all(message.get(name) for name in _REQUIRED.get(kind, ())):
        return None
    return message


def load(raw):
    """One validated message: `quick_load`, else `schemas.load_message` (which raises ValidationError)."""
    message = quick_load(raw)
    return load_message(raw) if message is None else message
