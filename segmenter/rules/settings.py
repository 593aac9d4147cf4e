"""Marshmallow schema of the per-site segment settings (kept in `sites.settings`)."""

from collections.abc import Collection, Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from segmenter.rules.definitions import SETTINGS, SETTINGS_BY_NAME, format_duration, parse_duration


class Duration(fields.Field):
    """A duration written like `30m`, `2h`, `7d`; loaded as milliseconds, dumped as text."""

    default_error_messages = {"invalid": "Not a duration (use e.g. 30m, 2h, 7d)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_duration(value)
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_duration(value)


def _field(setting):
    if setting.kind == "flag":
        return fields.Boolean(load_default=setting.default)
    bounds = validate.Range(min=setting.minimum, max=setting.maximum)
    if setting.kind == "duration":
        bounds.error = f"Must be between {format_duration(setting.minimum)} and {format_duration(setting.maximum)}."
        return Duration(load_default=setting.default, validate=bounds)
    return fields.Integer(load_default=setting.default, validate=bounds)


def _check_windows(self, data, **kwargs):
    for prefix in ("cart_abandon", "checkout_abandon"):
        if data[f"{prefix}_within"] <= data[f"{prefix}_after"]:
            raise ValidationError(f"Must be longer than {prefix}_after.", f"{prefix}_within")


SiteSettingsSchema = type(
    "SiteSettingsSchema",
    (Schema,),
    {
        **{setting.name: _field(setting) for setting in SETTINGS},
        "Meta": type("Meta", (), {"unknown": EXCLUDE}),
        "check_windows": validates_schema(_check_windows),
        "__doc__": "Every segment setting with its default; other keys of sites.settings are ignored.",
    },
)
settings_schema = SiteSettingsSchema()


def load_settings(stored: Mapping[str, Any] | None) -> dict[str, int]:
    """The effective segment settings of a site (defaults filled in) from its `settings` dict."""
    return settings_schema.load(stored or {})


def change_settings(
    stored: Mapping[str, Any] | None, assignments: Mapping[str, Any] | None = None, unset: Collection[str] = ()
) -> dict[str, Any]:
    """The site's `settings` dict with segment settings assigned (text values) or unset.

    Raises ValidationError for unknown names or bad values. Other keys are kept as they are.
    """
    assignments = dict(assignments or {})
    unknown = [name for name in [*assignments, *unset] if name not in SETTINGS_BY_NAME]
    if unknown:
        known = ", ".join(SETTINGS_BY_NAME)
        raise ValidationError({name: [f"Unknown setting; known: {known}."] for name in unknown})
    merged = {key: value for key, value in (stored or {}).items() if key not in unset}
    merged.update(assignments)
    loaded = settings_schema.load(merged)
    result = {key: value for key, value in merged.items() if key not in SETTINGS_BY_NAME}
    explicit = [name for name in SETTINGS_BY_NAME if name in merged]
    result.update(settings_schema.dump({name: loaded[name] for name in explicit}))
    return result
