"""The dev supervisor's restart policy: a growing delay, then giving up on a crash loop."""

from taskyard.dev import CRASH_LIMIT, CRASH_WINDOW, FIRST_BACKOFF, MAX_BACKOFF, RestartPolicy


def test_each_quick_exit_doubles_the_delay_until_it_gives_up() -> None:
    policy = RestartPolicy()
    delays = [policy.delay_after_exit(now=float(i)) for i in range(CRASH_LIMIT)]
    expected = [min(FIRST_BACKOFF * 2**i, MAX_BACKOFF) for i in range(CRASH_LIMIT - 1)]
    assert delays == [*expected, None]


def test_exits_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy()
    for i in range(CRASH_LIMIT - 1):
        policy.delay_after_exit(now=float(i))
    later = CRASH_LIMIT + CRASH_WINDOW + 1
    assert policy.delay_after_exit(now=later) == FIRST_BACKOFF
