"""IANA time zone names: the only zone vocabulary vestnik accepts."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA zone such as ``Europe/Moscow``; raise ValueError otherwise."""
    if name not in _known():
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Moscow'")
    return name


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(check_timezone(name))
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - guarded by check_timezone
        raise ValueError(str(exc)) from exc
