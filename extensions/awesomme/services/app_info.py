"""What ``GET /info/`` shows a caller: only what they may then run, so a client's lists offer nothing refused.

Models: those bound to one of the caller's cohorts (``/infer``). Trainers and their statistics: those bound to a
cohort the caller administers (``/train/{model}``). Strategies: for anyone in a cohort (``/activelearning``).
Scoring methods: for cohort admins (``/scoring``). Platform admins see everything. The label vocabulary and the
app's own fields stay as they are: they hold no data and fix the segment numbers clients use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from awesomme.core.visibility import Principal
from awesomme.inference.registry import get_registry
from awesomme.services.cohorts import bound_cohorts

__all__ = ["for_caller", "runnable_models", "trainable_models"]


def _bound(session: Session, names: list[str], cohorts: set[int]) -> list[str]:
    models = get_registry().models
    return [name for name in names if name in models and bound_cohorts(session, models[name].config) & cohorts]


def runnable_models(session: Session, principal: Principal) -> list[str]:
    """The models the caller may run: bound to one of their cohorts (every model, for a platform admin)."""
    names = sorted(get_registry().models)
    return names if principal.platform_admin else _bound(session, names, set(principal.roles))


def trainable_models(session: Session, principal: Principal) -> list[str]:
    """The models the caller may train: bound to a cohort they administer (every model, for a platform admin)."""
    names = sorted(get_registry().models)
    return names if principal.platform_admin else _bound(session, names, principal.administered)


def _only(section: Any, names: set[str]) -> Any:
    return {name: value for name, value in section.items() if name in names} if isinstance(section, dict) else section


def for_caller(session: Session, principal: Principal, info: dict[str, Any]) -> dict[str, Any]:
    """MONAI Label's app info narrowed to what ``principal`` may call."""
    if principal.platform_admin:
        return info
    trainable = set(trainable_models(session, principal))
    narrowed = dict(info)
    narrowed["models"] = _only(info.get("models", {}), set(runnable_models(session, principal)))
    narrowed["trainers"] = _only(info.get("trainers", {}), trainable)
    if "train_stats" in info:
        narrowed["train_stats"] = _only(info["train_stats"], trainable)
    narrowed["strategies"] = info.get("strategies", {}) if principal.in_any_cohort else {}
    narrowed["scoring"] = info.get("scoring", {}) if principal.administers_any else {}
    return narrowed
