"""A series as one caller may know it: absent and another cohort's answer the same 404.

Two texts for "no such series" and "not yours" would tell any logged-in user which series UIDs exist anywhere. A
series UID stored under several studies (the DICOM model broken: Orthanc then refuses to serve it) is a 409 naming
the studies the caller may see and counting the others; to a caller who sees none of them, it is the same 404.

Within one request (``one_lookup_per_request``), a series is looked up in Orthanc once: the access check, the
datastore and the services all get the state the check resolved, so what was checked is what is used, and a
request does not pay three REST calls for each time it names the series.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from awesomme.core.errors import Conflict, NotFound
from awesomme.core.visibility import Visibility
from awesomme.orthanc.client import OrthancClient, SeriesState

__all__ = [
    "ambiguous_series_conflict",
    "forget_series",
    "one_lookup_per_request",
    "series_not_found",
    "series_state",
    "visible_series_state",
]

# The series the current request has resolved, by SeriesInstanceUID (None outside a request: every call asks).
_resolved: ContextVar[dict[str, SeriesState] | None] = ContextVar("awesomme_resolved_series", default=None)


@contextmanager
def one_lookup_per_request() -> Iterator[None]:
    """Within the block (and the threads it hands its context to), each series is resolved in Orthanc once."""
    marker = _resolved.set({})
    try:
        yield
    finally:
        _resolved.reset(marker)


def series_state(client: OrthancClient, uid: str) -> SeriesState:
    """The series' state, resolved once per request (no visibility check: see ``visible_series_state``)."""
    resolved = _resolved.get()
    if resolved is None:
        return client.series_state(uid)
    state = resolved.get(uid)
    if state is None:
        state = resolved[uid] = client.series_state(uid)
    return state


def forget_series(uid: str) -> None:
    """The request changed or removed the series: a later lookup asks Orthanc again."""
    resolved = _resolved.get()
    if resolved is not None:
        resolved.pop(uid, None)


def series_not_found(uid: str) -> str:
    """The one answer for a series that is absent and for one in no cohort of the caller's."""
    return f"no series {uid[:80]} in your cohorts"


def visible_series_state(client: OrthancClient, visibility: Visibility, uid: str) -> SeriesState:
    """The series' state when ``visibility`` sees it; otherwise 404 with ``series_not_found``'s text.

    A UID stored under several studies is ``ambiguous_series_conflict``'s 409 (or 404).
    """
    try:
        state = series_state(client, uid)
    except NotFound:
        raise NotFound(series_not_found(uid)) from None
    except Conflict:
        raise ambiguous_series_conflict(client, visibility, uid) from None
    if not visibility.sees_series(state.study_uid, uid):
        raise NotFound(series_not_found(uid))
    return state


def ambiguous_series_conflict(client: OrthancClient, visibility: Visibility, uid: str) -> Conflict | NotFound:
    """What to answer about a series UID stored under several studies: a 409 naming the studies ``visibility``
    sees (and counting the others), or the 404 of an unknown series when it sees none of them."""
    studies = client.studies_of_series(uid)
    seen = [study for study in studies if visibility.sees_series(study, uid)]
    if not seen:
        return NotFound(series_not_found(uid))
    others = len(studies) - len(seen)
    hidden = f" and {others} other{'s' if others > 1 else ''} you may not see" if others else ""
    return Conflict(
        f"series {uid[:80]} is stored under {len(studies)} studies ({', '.join(seen)}{hidden}): a series belongs to "
        "one study; a platform admin must remove or re-identify the copies (`awesomme status` lists them)"
    )
