"""Orthanc's configuration is regenerated on start: an outdated one (an older installation's) is reported."""

from __future__ import annotations

import json
from pathlib import Path

from awesomme.core.config import Settings
from awesomme.runtime.orthanc import orthanc_config
from awesomme.runtime.platform import refresh_orthanc_config


def test_outdated_orthanc_configuration_is_regenerated_on_start_and_reported(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, orthanc_username="u", orthanc_password="p" * 20)
    config_path = tmp_path / "orthanc" / "orthanc.json"
    assert refresh_orthanc_config(settings) is None  # a first start: start_orthanc writes it
    config_path.parent.mkdir()
    current = orthanc_config(settings, "u", "p" * 20, tmp_path / "orthanc" / "storage")
    config_path.write_text(json.dumps(current))
    assert refresh_orthanc_config(settings) is None  # up to date: nothing to say
    config_path.write_text(json.dumps({**current, "HttpDescribeErrors": not current["HttpDescribeErrors"]}))
    message = refresh_orthanc_config(settings)
    assert message is not None and "HttpDescribeErrors" in message and "p" * 20 not in message
