"""Retry delays: the one backoff of the package (token POSTs and API calls)."""
from __future__ import annotations

import itertools
import random
import time
from email.utils import parsedate_to_datetime
from typing import Iterator, Optional

__all__ = ["MAX_BACKOFF", "backoff_delays", "retry_after"]


#: The longest wait between two attempts (unless the server's Retry-After asks for more).
MAX_BACKOFF = 8.0


def backoff_delays(
    first: float, *, multiplier: float = 2.0, cap: float = MAX_BACKOFF, jitter: float = 1.0
) -> Iterator[float]:
    """Seconds to wait before each retry, for ever (the caller takes as many as it retries;
    google-auth's ``_exponential_backoff``): ``first``, multiplied by ``multiplier`` each
    time, at most ``cap``; ``jitter`` is the part of each wait that may be taken off at
    random (1.0: full jitter, ``uniform(0, d)``; 0.0: none). The one backoff of the package:
    the token client's and the API session's retries."""
    for n in itertools.count():
        delay = min(cap, first * multiplier ** min(n, 64))
        yield random.uniform(delay * (1.0 - jitter), delay)


def retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
