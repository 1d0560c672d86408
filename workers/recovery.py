"""The recovery sweep every worker runs: no run is left RUNNING on a dead worker, or unqueued."""

import logging

from domain.runs.recovery import RunRecovery

logger = logging.getLogger("taskyard.worker")


async def recover(recovery: RunRecovery) -> None:
    """Retry or fail the runs of lost workers, then queue again the runs Redis lost."""
    reaped = await recovery.reap_lost_runs()
    queued = await recovery.enqueue_missing()
    if reaped or queued:
        logger.info("recovered runs: %d of lost workers, %d missing from the queue", reaped, queued)
