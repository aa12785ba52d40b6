"""A series as one caller may know it: absent, another cohort's, or ambiguous all answer the same 404.

Two texts for "no such series" and "not yours" would tell any logged-in user which series UIDs exist anywhere.
"""

from __future__ import annotations

from awesomme.core.errors import Conflict, NotFound
from awesomme.core.visibility import Visibility
from awesomme.orthanc.client import OrthancClient, SeriesState

__all__ = ["series_not_found", "visible_series_state"]


def series_not_found(uid: str) -> str:
    """The one answer for a series that is absent and for one in no cohort of the caller's."""
    return f"no series {uid[:80]} in your cohorts"


def visible_series_state(client: OrthancClient, visibility: Visibility, uid: str) -> SeriesState:
    """The series' state when ``visibility`` sees it; otherwise 404 with ``series_not_found``'s text.

    A UID stored under several studies is a conflict only for those who see everything: to others, whether another
    cohort's copy exists is not theirs to learn.
    """
    try:
        state = client.series_state(uid)
    except NotFound:
        raise NotFound(series_not_found(uid)) from None
    except Conflict:
        if visibility.everything:
            raise
        raise NotFound(series_not_found(uid)) from None
    if not visibility.sees_series(state.study_uid, uid):
        raise NotFound(series_not_found(uid))
    return state
