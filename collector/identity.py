"""Identity verification at ingestion: a userId counts only when the site's server vouched for it.

The write key is public, so anyone can send `identify` with any userId. A site that turns verification on
(`cohortly sites identity-secret SITE`) has its server compute `userHash = hex(HMAC-SHA256(identity secret,
userId))` and the page send it with the message as `context.userHash` (Segment and RudderStack SDKs: the
`context` option; Cohortly's snippet, whose `identify` takes traits only: `traits.userHash` of identify).

With verification on, a message whose userId comes without a matching hash is stored as an anonymous message
of its anonymousId: userId and previousId removed, traits (and `context.traits`) dropped, so it links
nothing and changes no profile; one without an anonymousId is rejected. The hash itself is never stored.
Pure: no Flask, no SQL.
"""

import hashlib
import hmac

from core.errors import APIError

HASH_FIELD = "userHash"
SETTING = "identity_verification"


def user_hash(secret, user_id):
    """What the site's server sends along with `user_id`: hex HMAC-SHA256 of the userId under the secret."""
    return hmac.new(secret.encode(), str(user_id).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def hash_matches(secret, user_id, claimed):
    """True when `claimed` is the hash of `user_id` under `secret` (constant-time; case of hex ignored)."""
    if not secret or not isinstance(claimed, str) or len(claimed) != 64:
        return False
    return hmac.compare_digest(user_hash(secret, user_id), claimed.lower())


def verify(message, site):
    """Take the hash out of a validated message; on a site with verification on, unlink an unverified one.

    Returns True when the message's userId is verified. Raises APIError (400 `unverified_user`) for a message
    that would be left with no id at all. Changes `message` in place.
    """
    claimed = _pop_hash(message)
    if not (site.get("settings") or {}).get(SETTING):
        return False
    user_id = message.get("userId")
    if user_id is None:
        return False
    if hash_matches(site.get("identity_secret"), user_id, claimed):
        return True
    if not message.get("anonymousId"):
        raise APIError(
            400,
            "unverified_user",
            "This site verifies user ids: send `context.userHash`, the hex "
            "HMAC-SHA256 of the userId under the site's identity secret.",
            {HASH_FIELD: ["Missing or wrong."]},
        )
    for key in ("userId", "previousId", "traits"):
        message.pop(key, None)
    context = message.get("context")
    if isinstance(context, dict) and "traits" in context:
        message["context"] = {key: value for key, value in context.items() if key != "traits"}
    return False


def _pop_hash(message):
    """The message's `userHash` (context first, then identify traits), removed from both places."""
    claimed = None
    for key in ("traits", "context"):  # context last: it wins
        part = message.get(key)
        if isinstance(part, dict) and HASH_FIELD in part:
            message[key] = {name: value for name, value in part.items() if name != HASH_FIELD}
            claimed = part[HASH_FIELD]
    return claimed
