"""Fixtures shared by the segmenter tests."""

import pytest

from tests.receiver import Receiver


@pytest.fixture
def receiver():
    """A running webhook receiver on this host, stopped after the test."""
    found = Receiver()
    found.start()
    yield found
    found.stop()
