"""What may leave Cohortly about a segment's members: one policy for every way out.

Member pages and exports (API and CLI), the changes feed, webhooks and the dashboard all ask here:

- **consent**: with `require_consent` a profile is shown only when its latest traits hold
  `marketing_consent: true`; a profile that is not shown is left out whole (its ids, traits and context);
- **k**: a segment with fewer than `min_export_size` members is refused. A member list of an empty segment
  names nobody and is allowed; the changes feed (and webhooks, and the dashboard's recent changes) names past
  members too, so there a segment under k is refused also when it is empty (unless k is 1, no minimum).

Pure: settings, sizes and traits come in, verdicts go out (the reads are in `segmenter.reads.members`).
"""

CONSENT_TRAIT = "marketing_consent"


def consented(settings, traits):
    """True unless the site requires marketing consent and `traits` do not hold `marketing_consent: true`."""
    return not settings["require_consent"] or (traits if isinstance(traits, dict) else {}).get(CONSENT_TRAIT) is True


def refusal(settings, size, history=False):
    """None when a segment of `size` members may be listed, else why not (the site's minimum k).

    `history`: the listing names past members as well (a feed of changes), so an empty segment is no excuse.
    """
    minimum = settings["min_export_size"]
    if size >= minimum or (not history and size == 0) or minimum <= 1:
        return None
    return f"The segment has {size} members; this site lists segments of at least {minimum}."


def sizes_needed(settings):
    """How far a segment's members must be counted to judge it (counting further costs and tells nothing)."""
    return settings["min_export_size"]


def shown_members(settings, rows):
    """The member rows (with `traits`) that may be shown, in order."""
    return (row for row in rows if consented(settings, row["traits"]))


def shown_changes(settings, changes, sizes, traits):
    """The changes that may be shown: their segment not under k (`sizes`: {segment: members counted up to k}),
    their profile consenting (`traits`: {profile_id: latest traits})."""
    return [
        change
        for change in changes
        if withheld(settings, sizes[change["segment"]], traits.get(change["profile_id"])) is None
    ]


def withheld(settings, size, traits):
    """Why one change of a segment of `size` members, of a profile with `traits`, may not go out; None if it may."""
    if not consented(settings, traits):
        return "no marketing consent (the site requires it)"
    if refusal(settings, size, history=True):
        return f"segment under min_export_size ({settings['min_export_size']})"
    return None
