"""IANA time zone names: the only zone vocabulary vestnik accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# The zones furthest ahead of and behind UTC: a wall-clock time happens somewhere between
# (time as UTC) - EARLIEST_ZONE and (time as UTC) + LATEST_ZONE.
EARLIEST_ZONE, LATEST_ZONE = timedelta(hours=14), timedelta(hours=12)


def utc_midnight(day: date) -> datetime:
    """The start of a UTC day."""
    return datetime.combine(day, time(0), tzinfo=UTC)


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


def _normal(text: str) -> str:
    cleaned = (
        text.casefold().replace("ё", "е").replace("_", " ").replace("-", " ").replace(".", " ")
    )
    return " ".join(cleaned.split())


# Large cities that share a zone named after another city (the tz database names one per zone).
_ALIASES = {
    "Europe/Moscow": (
        "Saint Petersburg", "St Petersburg", "Санкт-Петербург", "Петербург", "Питер", "СПб",
        "Nizhny Novgorod", "Нижний Новгород", "Kazan", "Казань", "Rostov-on-Don",
        "Ростов-на-Дону", "Voronezh", "Воронеж", "Krasnodar", "Краснодар", "Sochi", "Сочи",
        "Minsk", "Минск",
    ),
    "Europe/Samara": ("Izhevsk", "Ижевск"),
    "Asia/Yekaterinburg": ("Chelyabinsk", "Челябинск", "Perm", "Пермь", "Ufa", "Уфа", "Tyumen", "Тюмень"),
    "Asia/Krasnoyarsk": ("Krasnoyarsk", "Красноярск"),
    "Europe/Kyiv": ("Kiev", "Киев", "Київ"),
}  # fmt: skip


@lru_cache(maxsize=1)
def _cities() -> dict[str, tuple[str, ...]]:
    """City name (English from the zone id, Russian from CLDR via babel) -> zones."""
    from babel import Locale

    russian = Locale("ru").time_zones
    index: dict[str, list[str]] = {}
    for name in _known():
        if "/" not in name or name.startswith(("Etc/", "SystemV/", "US/", "Canada/", "Brazil/")):
            continue
        names = {name.rsplit("/", 1)[1]}
        city = russian.get(name, {}).get("city")
        if isinstance(city, str):
            names.add(city)
        names.update(_ALIASES.get(name, ()))
        for city_name in names:
            index.setdefault(_normal(city_name), []).append(name)
    return {city: tuple(sorted(zones)) for city, zones in index.items()}


def find_timezones(text: str, limit: int = 6) -> list[str]:
    """Zones for what a person typed: a zone id ("Europe/Berlin", any case), or a city in English
    or Russian ("Berlin", "москва"), or the start of one ("ekater"). Best matches first."""
    wanted = text.strip()
    by_case = {z.casefold(): z for z in _known()}
    if wanted.casefold() in by_case:
        return [by_case[wanted.casefold()]]
    key = _normal(wanted)
    if len(key) < 2:
        return []
    cities = _cities()
    if key in cities:
        return list(cities[key])[:limit]
    if len(key) < 3:
        return []
    found: list[str] = []
    for city in sorted(cities):
        if city.startswith(key):
            found += [z for z in cities[city] if z not in found]
    return found[:limit]
