"""Small pieces shared by list filters."""

from __future__ import annotations


def contains(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
