"""The one export policy as pure functions: the refusal under k and the consent trait (every way out:
tests/integration/segmenter/test_policy.py)."""

import pytest

from segmenter import policy
from segmenter.rules.settings import load_settings


@pytest.mark.parametrize(
    "k, size, history, refused",
    [
        (1, 0, True, False),
        (1, 0, False, False),
        (3, 0, False, False),
        (3, 0, True, True),
        (3, 2, False, True),
        (3, 3, True, False),
    ],
)
def test_refusal(k, size, history, refused):
    settings = load_settings({"min_export_size": k})
    assert (policy.refusal(settings, size, history) is not None) is refused


@pytest.mark.parametrize(
    "traits, shown",
    [
        ({"marketing_consent": True}, True),
        ({"marketing_consent": "true"}, False),
        (None, False),
        (["x"], False),
    ],
)
def test_consent_needs_the_trait_true(traits, shown):
    assert policy.consented(load_settings({"require_consent": True}), traits) is shown
    assert policy.consented(load_settings({}), traits) is True
