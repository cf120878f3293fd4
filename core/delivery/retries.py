"""How often and how long a message is tried again after a failure that may pass (a 5xx, a
timeout, a mail server's temporary refusal).

Exponential backoff with jitter: the n-th failed attempt waits about ``BASE * 2**(n-1)`` seconds
(at most ``CAP``), each wait drawn from its upper half so a thousand messages that failed together
do not come back together. With eight attempts a message rides out an outage of about four
minutes, where fixed waits gave up after ~25 s; it still fails at once when it would arrive after
its subject's ``useful_until``. A rate limit (429) is not a failure: it waits what the messenger
asked and uses up no attempt. The wait is computed in the database, from the attempt count the
row holds (core.delivery.deliveries.record_outcomes), so every worker agrees.
"""

from __future__ import annotations

MAX_ATTEMPTS = 8
BASE_SECONDS = 2.0
CAP_SECONDS = 300.0


def backoff_bounds(attempt: int) -> tuple[float, float]:
    """The range the wait after failed attempt ``attempt`` (1-based) is drawn from."""
    full = min(CAP_SECONDS, BASE_SECONDS * 2 ** max(0, attempt - 1))
    return full / 2, full
