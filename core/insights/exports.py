"""CSV exports of the statistics: UTF-8 with a byte-order mark (so spreadsheet apps read Cyrillic
names right), every field quoted when it holds a comma, quote or line break (the csv module)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from core.insights.statistics import DeliveryRow, WorkspaceStats

BOM = "\ufeff"


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return BOM + out.getvalue()


def days_csv(stats: WorkspaceStats) -> str:
    channels = sorted({c for d in stats.days for c in d.sent})
    header = [
        "day",
        *(f"sent {c}" for c in channels),
        "sent total",
        "daily limit",
        *(f"busiest second {c}" for c in channels),
        "per-second limit",
        "failed",
        "unreachable",
        "new members",
        "unsubscribed",
        "blocked",
        "confirmation requests",
        "answers",
        "answers per request",
    ]
    rows = (
        [
            d.day.isoformat(),
            *(d.sent.get(c, 0) for c in channels),
            d.sent_total,
            stats.daily_limit,
            *(d.peak_per_second.get(c, 0) for c in channels),
            stats.rate_per_second,
            d.failed,
            d.unreachable,
            d.new_members,
            d.unsubscribed,
            d.blocked,
            d.confirmation_requests,
            d.answers,
            d.answer_rate,
        ]
        for d in stats.days
    )
    return to_csv(header, rows)


def deliveries_csv(rows: Sequence[DeliveryRow]) -> str:
    header = ["member", "channel", "kind", "occurrence", "status", "reason", "queued at", "sent at"]
    return to_csv(
        header,
        (
            [
                r.member,
                r.channel,
                r.kind,
                r.occurrence,
                r.status,
                r.reason,
                r.created_at.isoformat(timespec="seconds"),
                r.sent_at.isoformat(timespec="seconds") if r.sent_at else None,
            ]
            for r in rows
        ),
    )
