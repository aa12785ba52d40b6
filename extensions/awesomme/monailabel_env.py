"""MONAI Label reads its settings from the environment when first imported: set ours before that happens."""

from __future__ import annotations

import os

from awesomme.core.config import Settings

__all__ = ["configure_monailabel"]


def configure_monailabel(settings: Settings) -> None:
    values = {
        "MONAI_LABEL_APP_DIR": str(settings.app_dir),
        # Our datastore ignores it, but MONAI Label keys its app singleton on it.
        "MONAI_LABEL_STUDIES": settings.dicomweb_url,
        "MONAI_LABEL_SESSION_PATH": str(settings.session_dir / "sessions"),
        "MONAI_LABEL_DATASTORE_CACHE_PATH": str(settings.session_dir / "cache"),
        "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(settings.session_dir / "cache"),
        "MONAI_LABEL_SERVER_PORT": str(settings.port),
        # mlflow 3 dropped the file store MONAI Label's trainers use.
        "MONAI_LABEL_TRACKING_ENABLED": "false",
        "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
    }
    # MONAI Label runs training in a child process that reads PYTHONPATH (and fails when it is unset).
    values["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(settings.app_dir)]))
    for key, value in values.items():
        os.environ.setdefault(key, value)
    # Keep MONAI Label's own scratch files (sessions, uploads) under var/ rather than /tmp and ~/.cache.
    scratch = settings.var_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TMPDIR", str(scratch))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.var_dir / "cache" / "torchinductor"))
