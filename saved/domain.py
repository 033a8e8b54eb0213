"""Pure rules of saved views and schedules: which pages can be saved, how a query is kept, and
when a weekly or monthly schedule is due. No Django, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlencode

# The analytics pages a view can be saved of, by URL name, with the title its e-mail shows.
PAGES: dict[str, str] = {
    "home": "Overview",
    "usage": "Usage",
    "steps": "Steps",
    "runs": "Run history",
    "errors": "Errors",
    "costs": "Costs",
    "factory-health": "Factory health",
    "queues": "Queues",
}
NAME_MAX = 80
QUERY_MAX = 1000  # characters of the kept query string
VIEWS_PER_USER = 50
SCHEDULES_PER_USER = 20
# A saved view is a filter, not a position in a list: these never go into it.
DROPPED_PARAMS = frozenset({"page", "cursor", "after", "before", "csrfmiddlewaretoken"})

WEEKLY, MONTHLY = "weekly", "monthly"
CADENCES = {WEEKLY: "Weekly, on Mondays", MONTHLY: "Monthly, on the 1st"}


class SavedViewError(ValueError):
    """A saved view or schedule that cannot be kept; the message is shown to the user."""


def name_clean(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise SavedViewError("A saved view needs a name.")
    if len(name) > NAME_MAX:
        raise SavedViewError(f"A name has at most {NAME_MAX} characters.")
    return name


def query_clean(query: str) -> str:
    """The query string without a leading ``?`` and without list positions, re-encoded; at
    most ``QUERY_MAX`` characters."""
    too_long = f"The page's filters are too long to save (over {QUERY_MAX} characters)."
    query = query.strip().removeprefix("?")
    if len(query) > QUERY_MAX:
        raise SavedViewError(too_long)
    pairs = parse_qsl(query, keep_blank_values=False)
    kept = urlencode([(key, value) for key, value in pairs if key not in DROPPED_PARAMS])
    if len(kept) > QUERY_MAX:
        raise SavedViewError(too_long)
    return kept


@dataclass(frozen=True)
class Occurrence:
    """The day a schedule's latest e-mail was due (in the tenant's calendar)."""

    cadence: str
    day: date


def latest_occurrence(cadence: str, today: date) -> Occurrence:
    """The latest Monday (weekly) or 1st of the month (monthly) on or before ``today``."""
    if cadence == WEEKLY:
        return Occurrence(cadence, today - timedelta(days=today.weekday()))
    if cadence == MONTHLY:
        return Occurrence(cadence, today.replace(day=1))
    raise SavedViewError(f"Unknown cadence {cadence!r}; one of {', '.join(CADENCES)}.")


def due_occurrence(cadence: str, today: date, created_on: date) -> Occurrence | None:
    """The occurrence to send now, if any: the latest one, unless it came before the schedule
    was made (a schedule made on a Wednesday waits for Monday). A beat that missed a day sends
    late rather than never; each occurrence is one row per recipient, so never twice."""
    latest = latest_occurrence(cadence, today)
    return latest if latest.day >= created_on else None
