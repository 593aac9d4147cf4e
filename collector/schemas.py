"""Marshmallow schemas of the Segment HTTP Tracking API: the verdict and the error messages on any input.

Kept lean on purpose: types and limits per field; `properties`, `traits` and
`context` are plain dicts whose size the 32 KB message limit bounds.
`messages.quick_load` accepts the common valid message without marshmallow, exactly as these schemas would.
"""

from datetime import UTC

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

TYPES = ("track", "page", "screen", "identify", "alias", "group")
ID_LENGTH = 200


class Id(fields.Field):
    """A Segment id: a string, or a number that SDKs send for numeric ids; an empty or blank one is absent (None),
    so that "" never becomes one profile shared by everyone who sent it."""

    default_error_messages = {
        "invalid": "Not a valid id (a string or a number).",
        "too_long": f"Longer than {ID_LENGTH} characters.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error("invalid")
        value = value if isinstance(value, str) else str(value)
        if not value or value.isspace():
            return None
        if len(value) > ID_LENGTH:
            raise self.make_error("too_long")
        return value


def _text(max_length):
    return fields.String(allow_none=True, validate=validate.Length(max=max_length))


class MessageSchema(Schema):
    """One Segment message (track, page, screen, identify, alias, group)."""

    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    messageId = Id(allow_none=True)
    userId = Id(allow_none=True)
    anonymousId = Id(allow_none=True)
    previousId = Id(allow_none=True)
    groupId = Id(allow_none=True)
    event = _text(ID_LENGTH)
    name = _text(ID_LENGTH)
    category = _text(ID_LENGTH)
    properties = fields.Dict(allow_none=True)
    traits = fields.Dict(allow_none=True)
    context = fields.Dict(allow_none=True)
    integrations = fields.Dict(allow_none=True)
    timestamp = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    originalTimestamp = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    sentAt = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    receivedAt = fields.Raw(allow_none=True)
    # Sent by SDKs and ignored here.
    writeKey = fields.String(allow_none=True)
    channel = _text(50)
    version = fields.Raw(allow_none=True)
    options = fields.Dict(allow_none=True)
    _metadata = fields.Dict(allow_none=True, data_key="_metadata")
    rudderId = Id(allow_none=True)

    @validates_schema
    def check_type_fields(self, data, **kwargs):
        kind = data.get("type")
        if kind is None:  # a partial load without `type`: load_message reports it
            return
        if kind == "alias":
            required = ("previousId", "userId")
        elif not (data.get("userId") or data.get("anonymousId")):
            raise ValidationError("userId or anonymousId is required.", "userId")
        else:
            required = {"track": ("event",), "group": ("groupId",)}.get(kind, ())
        missing = {name: ["Missing data for required field."] for name in required if not data.get(name)}
        if missing:
            raise ValidationError(missing)


class BatchSchema(Schema):
    """The envelope of `POST /v1/batch`; its messages are validated one by one."""

    class Meta:
        unknown = RAISE

    batch = fields.List(fields.Raw(), required=True)
    sentAt = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    timestamp = fields.Raw(allow_none=True)
    writeKey = fields.String(allow_none=True)
    context = fields.Dict(allow_none=True)
    integrations = fields.Dict(allow_none=True)
    metadata = fields.Dict(allow_none=True)
    _metadata = fields.Dict(allow_none=True, data_key="_metadata")


message_schema = MessageSchema()
batch_schema = BatchSchema()
MISSING = "Missing data for required field."


def load_message(raw):
    """One validated message, as `message_schema.load(raw)` but about a third cheaper.

    A partial load skips the absent fields, most of the 23 in a typical message; `type`, the one required
    field, is then checked here, with the error a full load gives.
    """
    try:
        message = message_schema.load(raw, partial=True)
    except ValidationError as err:
        if isinstance(raw, dict) and "type" not in raw:
            err.messages.setdefault("type", [MISSING])
        raise
    if "type" not in raw:
        raise ValidationError({"type": [MISSING]})
    return message
