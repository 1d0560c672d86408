"""Plans and quotas: what each user may run per day, at once, and in which lanes.

Counting is done by PostgreSQL in the transaction that inserts the run, so it commits or
rolls back with the run itself: it never drifts, a Redis loss cannot reset it, and a run
retried after a crash (the same row, a new attempt) is never counted again. Who holds a
concurrency slot is derived from the RUNNING run rows at each claim, never from a counter,
so a slot held by a dead worker's run comes back when the reaper ends that run.
"""
