"""Marshmallow schemas of the segment API: query arguments and responses (they also make the OpenAPI document)."""

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate

from core.times import iso  # the one rendering of stored times (never fails); members, exports, webhooks use it


def iso_times(value):
    """A JSON value with every integer under a key ending in `_at` shown as an ISO time."""
    if isinstance(value, dict):
        return {
            key: iso(item)
            if key.endswith("_at") and isinstance(item, int) and not isinstance(item, bool)
            else iso_times(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [iso_times(item) for item in value]
    return value


class Time(fields.Field):
    """An epoch-ms time shown as ISO 8601."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


class Json(fields.Field):
    """Free JSON whose `*_at` times are shown as ISO 8601."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso_times(value)


MAX_ID = 2**63 - 1  # the largest id a BIGINT column holds

LIMIT = fields.Integer(
    load_default=100, validate=validate.Range(1, 1000), metadata={"description": "Page size (1-1000)"}
)


class MembersQuery(Schema):
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page"})
    limit = LIMIT
    entered_since = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "Only members who entered at or after this time"}
    )


class ExportQuery(Schema):
    entered_since = fields.AwareDateTime(default_timezone=UTC)


class ChangesQuery(Schema):
    since = fields.Integer(
        load_default=0,
        validate=validate.Range(0, MAX_ID),
        metadata={"description": "A change id; the feed starts after it"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class SegmentSchema(Schema):
    name = fields.String()
    kind = fields.String(metadata={"description": "built_in, or site (defined by the site: POST /api/v1/segments)"})
    version = fields.Integer(metadata={"description": "A site-defined segment's current version"})
    description = fields.String()
    definition = fields.Dict(metadata={"description": "The rule as data: minimum data (requires) and conditions"})
    thresholds = fields.Dict(metadata={"description": "The site's settings the rule uses, as written (2h, 7d, 10)"})
    size = fields.Integer()
    min_size = fields.Integer()
    too_small = fields.Boolean(metadata={"description": "Fewer members than the site's min_segment_size"})
    last_computed_at = Time(allow_none=True)
    age_seconds = fields.Integer(allow_none=True)
    stale = fields.Boolean(metadata={"description": "Not computed within STALE_AFTER seconds"})


class SegmentListSchema(Schema):
    segments = fields.List(fields.Nested(SegmentSchema))


class SegmentVersionSchema(Schema):
    """One version of a site-defined segment."""

    name = fields.String()
    version = fields.Integer()
    action = fields.String(metadata={"description": "create, update or delete"})
    description = fields.String(allow_none=True)
    rule = fields.Raw(allow_none=True, metadata={"description": "The rule (none for a delete)"})
    requires = fields.Raw(allow_none=True)
    created_at = Time()
    created_by = fields.String(metadata={"description": "api (the site's API key) or cli"})


class SegmentVersionListSchema(Schema):
    versions = fields.List(fields.Nested(SegmentVersionSchema))


class MemberSchema(Schema):
    profile_id = fields.String()
    user_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    anonymous_ids = fields.List(fields.String())
    traits = fields.Dict(allow_none=True)
    entered_at = Time()
    context = Json(metadata={"description": "What a message needs: browsed products, cart and value, orders"})


class MemberPageSchema(Schema):
    members = fields.List(fields.Nested(MemberSchema))
    next_cursor = fields.String(allow_none=True)


class ChangeSchema(Schema):
    id = fields.Integer()
    segment = fields.String()
    profile_id = fields.String()
    change = fields.String(metadata={"description": "enter or exit"})
    at = Time(metadata={"description": "When the behaviour crossed the threshold"})
    detected_at = Time(metadata={"description": "When the rollup saw it"})
    reason = fields.String()
    context = Json(allow_none=True)
    run_id = fields.Integer(allow_none=True)


class ChangePageSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema))
    next_cursor = fields.Integer(metadata={"description": "Pass as `since` for the next page"})


class ProfileSchema(Schema):
    profile_id = fields.String()
    user_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    anonymous_ids = fields.List(fields.String())
    traits = fields.Dict(allow_none=True)
    facts = Json()
    segments = Json()
    recent_views = Json()
    history = fields.List(fields.Nested(ChangeSchema))


class VisitorQuery(Schema):
    anonymousId = fields.String(required=True, validate=validate.Length(1, 200))


class VisitorSegmentsSchema(Schema):
    segments = fields.List(fields.String())


def storable_text(value):
    """Refuse what neither database can store: a NUL (PostgreSQL) or a lone surrogate (not UTF-8)."""
    if "\x00" in value:
        raise ValidationError("Contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Contains invalid unicode (a lone surrogate).") from None


class WebhookCreateSchema(Schema):
    url = fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False, validate=[storable_text, validate.Length(max=2000)]
    )
    segments = fields.List(
        fields.String(validate=storable_text),
        load_default=None,
        metadata={"description": "Segment names; omitted: every segment"},
    )
    changes = fields.List(
        fields.String(validate=validate.OneOf(("enter", "exit"))),
        load_default=("enter", "exit"),
        validate=validate.Length(min=1),
    )
    secret = fields.String(
        validate=[storable_text, validate.Length(16, 200)],
        metadata={"description": "HMAC secret; omitted: one is made and shown once"},
    )


class WebhookSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    segments = fields.List(fields.String(), allow_none=True)
    changes = fields.List(fields.String())
    cursor = fields.Integer(metadata={"description": "The last change id queued for this webhook"})
    created_at = Time()
    deliveries = fields.Dict(keys=fields.String(), values=fields.Integer())
    secret = fields.String(metadata={"description": "Only in the answer to the registration"})


class WebhookListSchema(Schema):
    webhooks = fields.List(fields.Nested(WebhookSchema))


class DeliveryQuery(Schema):
    status = fields.String(validate=validate.OneOf(("pending", "delivered", "failed", "skipped")))
    before = fields.Integer(validate=validate.Range(1, MAX_ID), metadata={"description": "A delivery id cursor"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DeliverySchema(Schema):
    id = fields.Integer()
    change_id = fields.Integer()
    idempotency_key = fields.String()
    segment = fields.String()
    change = fields.String()
    profile_id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = Time()
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = Time()
    delivered_at = Time(allow_none=True)


class DeliveryListSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema))


class ResyncSchema(Schema):
    since = fields.Integer(
        required=True,
        validate=validate.Range(0, MAX_ID),
        metadata={"description": "Send again every change after this change id"},
    )


class ResyncResultSchema(Schema):
    queued = fields.Integer()


class ErasureSchema(Schema):
    erased = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "Rows deleted per table"}
    )


class PreviewSchema(Schema):
    """What a rule would give now."""

    size = fields.Integer()
    too_small = fields.Boolean(metadata={"description": "Fewer members than the site's min_segment_size"})
    sample = fields.List(fields.Nested(MemberSchema), metadata={"description": "Up to 10 members, by profile id"})
    sample_withheld = fields.String(
        allow_none=True, metadata={"description": "Why no sample is shown (under the site's min_export_size)"}
    )
    enters = fields.Integer(allow_none=True, metadata={"description": "Against the named segment's members now"})
    exits = fields.Integer(allow_none=True)
