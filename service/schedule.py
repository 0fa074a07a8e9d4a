"""A pipeline's schedule: a five-field cron expression read in an IANA time zone.

croniter does the reading and the arithmetic (day-of-week names, ranges, steps, daylight-saving
changes): a hand-written cron parser is where schedules go wrong. The expression is kept as sent.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from service.errors import bad_parameter

FIELDS = ("cron", "timezone")


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first scheduled time strictly after ``moment`` (an aware time), in UTC."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        following: datetime.datetime = croniter(self.cron, local).get_next(datetime.datetime)
        return following.astimezone(datetime.UTC)

    def as_json(self) -> dict[str, str]:
        return {"cron": self.cron, "timezone": self.timezone}


def parse_schedule(value: Any, now: datetime.datetime | None = None) -> Schedule | None:
    """The ``schedule`` field of a pipeline: an object with ``cron`` and ``timezone``, or null.

    Refused with a 400 naming the field: an expression croniter cannot read, one with other than five
    fields (croniter would take a sixth as seconds), a zone the system does not know, and a date that
    never comes (``0 0 30 2 *``), which would otherwise be a schedule that silently never runs.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_parameter("schedule", 'must be null or an object such as {"cron": "0 2 * * *", '
                            '"timezone": "Europe/Berlin"}')  # fmt: skip
    unknown = set(value) - set(FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise bad_parameter(f"schedule.{field}", "unknown field; expected cron, timezone")
    cron, timezone = value.get("cron"), value.get("timezone")
    if not isinstance(cron, str) or len(cron) > 200 or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise bad_parameter("schedule.cron", "must be a cron expression of five fields: minute hour "
                            "day-of-month month day-of-week, such as '0 2 * * *'")  # fmt: skip
    if not isinstance(timezone, str) or not timezone or len(timezone) > 100:
        raise bad_parameter(
            "schedule.timezone", "must be an IANA time zone name such as Europe/Berlin or UTC"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # a folder such as "Europe" is an OSError
        raise bad_parameter("schedule.timezone", f"unknown time zone {timezone!r}") from exc
    schedule = Schedule(cron, timezone)
    try:
        schedule.next_after(now or datetime.datetime.now(datetime.UTC))
    except CroniterBadDateError as exc:
        raise bad_parameter("schedule.cron", f"{cron!r} never comes") from exc
    return schedule


def schedule_of(stored: dict[str, Any] | None) -> Schedule | None:
    """The schedule a stored pipeline carries (it was checked by :func:`parse_schedule` when sent)."""
    return Schedule(stored["cron"], stored["timezone"]) if stored else None
