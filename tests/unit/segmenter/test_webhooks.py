"""A webhook's retry delay doubles with each attempt, up to an hour (the webhooks against a real receiver:
tests/integration/segmenter/test_webhooks.py)."""

import pytest

from segmenter.webhooks import outbox


@pytest.mark.parametrize("attempts, low, high", [(1, 8_000, 12_000), (2, 16_000, 24_000), (20, 2_880_000, 4_320_000)])
def test_retry_delay_doubles_up_to_an_hour(attempts, low, high):
    for rand in (0.0, 0.5, 0.999):
        assert low <= outbox.retry_delay(attempts, lambda rand=rand: rand) <= high
