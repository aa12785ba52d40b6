from __future__ import annotations

import stat
from pathlib import Path

from awesomme.core.config import Settings
from awesomme.runtime.orthanc import ensure_secrets, orthanc_config


def test_orthanc_is_private_by_default(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, orthanc_url="http://127.0.0.1:18042")
    config = orthanc_config(settings, "user", "secret", tmp_path / "storage")
    assert config["HttpPort"] == 18042
    assert config["RemoteAccessAllowed"] is False
    assert config["AuthenticationEnabled"] is True
    assert config["RegisteredUsers"] == {"user": "secret"}
    assert config["DicomServerEnabled"] is False
    assert config["StorageDirectory"] == str(tmp_path / "storage")
    assert any(plugin.endswith("libOrthancDicomWeb.so") for plugin in config["Plugins"])


def test_the_dicom_port_opens_only_when_configured(tmp_path: Path) -> None:
    config = orthanc_config(Settings(var_dir=tmp_path, orthanc_dicom_port=11112), "u", "p", tmp_path)
    assert config["DicomServerEnabled"] is True and config["DicomPort"] == 11112


def test_secrets_are_random_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = ensure_secrets(settings)
    assert len(first["AWESOMME_ORTHANC_PASSWORD"]) >= 32
    assert stat.S_IMODE(settings.secrets_file.stat().st_mode) == 0o600
    assert ensure_secrets(settings) == first
    other = ensure_secrets(Settings(var_dir=tmp_path / "other"))
    assert other["AWESOMME_ORTHANC_PASSWORD"] != first["AWESOMME_ORTHANC_PASSWORD"]


def test_orthanc_never_overwrites_and_keeps_its_error_texts(tmp_path: Path) -> None:
    config = orthanc_config(Settings(var_dir=tmp_path), "u", "p", tmp_path)
    assert config["OverwriteInstances"] is False
    assert config["HttpDescribeErrors"] is False
