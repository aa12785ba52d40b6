"""A directory of model YAMLs read into configs by name, whatever the kind (segmentation or classification)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

__all__ = ["load_config_directory"]

logger = logging.getLogger(__name__)


class _Named(Protocol):
    name: str


Named = TypeVar("Named", bound=_Named)


def load_config_directory(
    directory: Path, load_file: Callable[[Path], Named | None], error: type[Exception], kind: str
) -> tuple[dict[str, Named], dict[str, str]]:
    """The configs ``load_file`` accepts (None: another kind's file), by name; each refused file's reason, logged."""
    configs: dict[str, Named] = {}
    problems: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            config = load_file(path)
        except error as problem:
            problems[path.name] = str(problem)
            continue
        if config is None:
            continue
        if config.name in configs:
            problems[path.name] = f"model name {config.name!r} is already declared by another file"
            continue
        configs[config.name] = config
    for name, reason in problems.items():
        logger.error("%s config %s disabled: %s", kind, name, reason)
    return configs, problems
