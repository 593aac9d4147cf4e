"""docs/webhooks.md states the bounds of a delivery pass that the code keeps (the passes against real receivers:
tests/integration/segmenter/test_webhook_pass.py)."""

from segmenter.webhooks import outbox


def test_the_docs_state_the_bounds_the_code_keeps():
    from pathlib import Path

    text = " ".join((Path(__file__).parents[3] / "docs" / "webhooks.md").read_text().split())
    assert f"over within {outbox.DELIVERY_SECONDS} s of wall-clock time" in text
    assert f"returns within {outbox.PASS_BUDGET_SECONDS} s" in text
    assert f"never below {outbox.MIN_DELIVERY_SECONDS} s" in text
    assert f"its budget plus {outbox.LEASE_SLACK_SECONDS} s" in text
    assert "COHORTLY_WEBHOOK_ALLOW_NETWORKS" in text
