"""The scheduled job, one pass: every site's rollup, then the webhooks, then the retention purge.

A library function so that `cohortly rollup`, the demo and the tests run the same pass. Each step commits
before the next starts; a failing site's rollup or a failing webhook pass never stops the steps after it.
"""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from sqlalchemy import Engine

from core import sites, times
from segmenter import privacy
from segmenter.rollup.chunks import run_rollup
from segmenter.webhooks import outbox


@dataclass
class PassResult:
    """What one pass did: the rollup summary of each site, the webhook pass, events purged (or the error
    class of a failed purge) per site."""

    summaries: list
    webhooks: "outbox.DeliveryPass | None" = None
    webhook_error: str | None = None
    purged: dict = field(default_factory=dict)
    purge_errors: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(summary.status == "failed" for summary in self.summaries)


def run_pass(
    engine: Engine,
    now: int | None = None,
    site_id: int | None = None,
    allowed: Sequence[IPv4Network | IPv6Network] = (),
    chunk_size: int | None = None,
    progress: Callable[[str, int], AbstractContextManager[Any]] | None = None,
) -> PassResult:
    """Roll up (one site or all), deliver webhooks within their budget, purge what retention allows.

    `now` (epoch ms) judges and schedules as of that time (None: the clock); `allowed`: networks webhooks
    may reach though not public (webhook_http.allowed_networks).
    """
    summaries = run_rollup(engine, now=now, site_id=site_id, chunk_size=chunk_size, progress=progress)
    result = PassResult(summaries)
    at = now if now is not None else times.now_ms()
    try:
        result.webhooks = outbox.deliver(engine, at, allowed)
    except Exception as err:  # noqa: BLE001 - a delivery problem never fails the rollup job
        result.webhook_error = err.__class__.__name__
    for site in sites.list_sites(engine):
        try:
            purged = privacy.purge_events(engine, site["id"], at, wait_seconds=0)
        except privacy.Busy:  # a busy site waits for the next pass
            continue
        except Exception as err:  # noqa: BLE001 - one site's purge never stops the others'
            result.purge_errors[site["name"]] = err.__class__.__name__
            continue
        if purged:
            result.purged[site["name"]] = purged
    return result
