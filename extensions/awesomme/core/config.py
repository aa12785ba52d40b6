"""Platform settings: one class, prefix ``AWESOMME_``, embedded defaults under ``var/``.

Secrets that ``make run`` generates (Orthanc's private credentials) live in ``var/secrets.env`` (mode 0600),
which the settings read after the process environment.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VAR_DIR = REPO_ROOT / "var"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
# Defaults and favourites that must never guard a production system.
WEAK_SECRETS = {"", "orthanc", "postgres", "password", "changeme", "admin", "secret", "awesomme", "monailabel"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWESOMME_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    var_dir: Path = DEFAULT_VAR_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    # Binding anywhere but loopback is an explicit decision of the operator.
    allow_remote: bool = False
    database_url: str = ""
    app_dir: Path = REPO_ROOT / "apps" / "awesomme"
    infer_configs_dir: Path = REPO_ROOT / "infer_configs"
    # The viewer at /viewer/: the pinned prebuilt OHIF (scripts/install_viewer.py) and our plugin's bundles.
    viewer_dist_dir: Path = REPO_ROOT / "var" / "viewer"
    viewer_plugins_dir: Path = REPO_ROOT / "ohif-plugin" / "dist"
    viewer_max_web_workers: int = Field(default=2, ge=1, le=16)

    orthanc_url: str = "http://127.0.0.1:8042"
    orthanc_username: str = ""
    orthanc_password: str = ""
    orthanc_timeout_s: float = 60.0
    # Orthanc's DICOM port (C-STORE etc.) has no authentication: off unless a port is given here.
    orthanc_dicom_port: int = Field(default=0, ge=0, le=65535)

    # Which trained version of a model serves ({"osteosarcoma_mr": "0.1.0+20261126T0812"}); the shipped one if absent.
    model_versions: dict[str, str] = Field(default_factory=dict)

    access_token_ttl_s: int = Field(default=900, ge=30)
    refresh_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    jwt_issuer: str = "awesomme"
    password_min_length: int = Field(default=12, ge=8)
    # Browser logins (the /login page): an HttpOnly cookie holding a server-side session.
    session_ttl_s: int = Field(default=8 * 3600, ge=60)
    # Personal access tokens (scripts): the longest lifetime a user may ask for, in days.
    pat_max_days: int = Field(default=90, ge=1, le=3650)
    # Failed logins and invite-code attempts, per window: per username from one address, per address, and per
    # username from all addresses (a lock-out of the account itself: see awesomme.services.throttle).
    login_failures_per_user: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window_s: int = Field(default=300, ge=1)
    invite_failures_per_window: int = Field(default=10, ge=1)
    invite_max_hours: int = Field(default=24 * 90, ge=1)
    login_failures_per_account: int = Field(default=30, ge=1)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto count (addresses or networks, comma-separated); none by
    # default: the client address is then the TCP peer's, whatever a client's headers say.
    trusted_proxies: str = ""
    # The key that signs the journal's anchor (hex, 32+ bytes); empty: var/audit/anchor.key, made on first use.
    audit_anchor_key: str = ""

    cache_max_bytes: int = Field(default=2 * 1024**3, ge=0)
    # What serves the server's memory (runtime/allocator.py): tcmalloc where installed, or the C library's
    allocator: Literal["tcmalloc", "system"] = "tcmalloc"
    upload_max_bytes: int = Field(default=512 * 1024**2, gt=0)
    # Where served networks, the uncertainty strategy and /train run: auto (CUDA when present), cpu, cuda, cuda:<n>.
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:[0-9]{1,2})?)$")
    # How far the gaps between a series' slices may differ (mm) and it still be one evenly spaced volume.
    slice_spacing_tolerance_mm: float = Field(default=0.01, gt=0, le=1.0)
    # An imported segmentation must lie on its series' grid: differences up to these count as rounding.
    seg_import_spacing_tolerance_mm: float = Field(default=0.01, ge=0)
    seg_import_origin_tolerance_mm: float = Field(default=0.1, ge=0)
    seg_import_orientation_tolerance_deg: float = Field(default=0.1, ge=0)
    # An import's zip: at most this many members, this many bytes unpacked in all, this unpacked/packed ratio each.
    import_zip_max_members: int = Field(default=20000, ge=1)
    import_zip_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    import_zip_max_ratio: float = Field(default=100.0, ge=1)
    # An imported NIfTI volume's voxels at most (a 4-D or absurd header is refused before reading its data).
    import_nifti_max_voxels: int = Field(default=512 * 512 * 2000, ge=1)
    # Hospital PACS peers (C-ECHO, C-FIND, C-GET): our calling AE title, and how long a peer may keep us waiting.
    pacs_calling_ae_title: str = Field(
        default="AWESOMME", min_length=1, max_length=16, pattern=r"^[ -\[\]-~]*[!-\[\]-~][ -\[\]-~]*$"
    )
    pacs_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # C-MOVE peers send to a storage SCP a retrieval opens on this address (and the peer's move_port) while it runs.
    pacs_move_address: str = "127.0.0.1"
    # Cohort batches run on Dask: by default a LocalCluster of this many worker processes (loopback, TLS with
    # in-memory certificates), started at the first batch and closed after this many idle seconds.
    dask_workers: int = Field(default=2, ge=1, le=64)
    dask_idle_s: float = Field(default=300.0, ge=1)
    # An existing cluster instead: its scheduler's tls:// address (plain tcp:// is refused: anyone who reaches an
    # unauthenticated scheduler runs code on its workers) and this client's certificate, key and CA (PEM files).
    dask_scheduler: str = ""
    dask_tls_ca: str = ""
    dask_tls_cert: str = ""
    dask_tls_key: str = ""
    # Encrypts the token signing keys at rest (32+ characters); empty: a random one in var/keys/signing.key (0600).
    key_encryption_key: str = Field(default="", repr=False)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.host not in LOOPBACK_HOSTS and not self.allow_remote:
            raise ValueError(
                f"AWESOMME_HOST={self.host} is not a loopback address: set AWESOMME_ALLOW_REMOTE=true to serve "
                "other hosts (behind a TLS-terminating proxy)"
            )
        if self.environment == "production":
            self._refuse_weak_secrets()
        return self

    @field_validator("dask_scheduler")
    @classmethod
    def _scheduler_over_tls(cls, value: str) -> str:
        if value and not value.startswith("tls://"):
            raise ValueError(
                f"AWESOMME_DASK_SCHEDULER={value[:80]!r}: a Dask scheduler is reached over tls:// only (plain tcp:// "
                "lets anyone who reaches it run code on its workers)"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for part in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"AWESOMME_TRUSTED_PROXIES: {part[:64]!r} is not an IP address or network") from None
        return value

    def _refuse_weak_secrets(self) -> None:
        """Outside development, no default or guessable secret is accepted."""
        if len(self.orthanc_password) < 16 or self.orthanc_password.lower() in WEAK_SECRETS:
            raise ValueError("AWESOMME_ORTHANC_PASSWORD must be a generated secret of 16+ characters in production")
        database_password = make_url(self.db_url).password if self.database_url else None
        if database_password is not None and (
            len(str(database_password)) < 12 or str(database_password).lower() in WEAK_SECRETS
        ):
            raise ValueError("the password in AWESOMME_DATABASE_URL is a default or too short (12+) for production")
        kek = self.key_encryption_key
        if kek and (len(kek) < 32 or kek.lower() in WEAK_SECRETS):  # empty: a generated key file under var/keys/
            raise ValueError("AWESOMME_KEY_ENCRYPTION_KEY must be a generated secret of 32+ characters in production")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'awesomme.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.var_dir / "cache" / "series"

    @property
    def models_dir(self) -> Path:
        """Weights trained here: ``<models_dir>/<name>/<version>/`` (the shipped ones are never overwritten)."""
        return self.var_dir / "models"

    @property
    def session_dir(self) -> Path:
        return self.var_dir / "monailabel"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def audit_dir(self) -> Path:
        return self.var_dir / "audit"

    @property
    def secrets_file(self) -> Path:
        return self.var_dir / "secrets.env"

    @property
    def key_encryption_key_file(self) -> Path:
        """Where the key that encrypts signing keys at rest lives unless AWESOMME_KEY_ENCRYPTION_KEY gives it."""
        return self.var_dir / "keys" / "signing.key"

    @property
    def dicomweb_url(self) -> str:
        return self.orthanc_url.rstrip("/") + "/dicom-web"


def load_settings() -> Settings:
    """Settings from the environment, then from the generated secrets file of the var directory."""
    secrets = Path(os.environ.get("AWESOMME_VAR_DIR", DEFAULT_VAR_DIR)) / "secrets.env"
    return Settings(_env_file=secrets if secrets.is_file() else None)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
