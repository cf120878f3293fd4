"""The roles every workspace has, apart from the tables: the CLI lists them without loading the
ORM."""

from __future__ import annotations

from enum import StrEnum


class BuiltinRole(StrEnum):
    owner = "owner"
    lead = "lead"
    member = "member"
