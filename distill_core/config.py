"""Settings read from the environment, with defaults that need no set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Largest upload accepted, in megabytes. `.streamlit/config.toml` sets `server.maxUploadSize`
#: to the same number (a test checks that the two agree).
MAX_UPLOAD_MB = 200
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may unpack and hold, beyond its size (``MAX_UPLOAD_MB``); past any of
    these the reader stops with one sentence. Stated in the README's Configuration section.

    ``max_rows`` and ``max_columns`` count data rows and columns in any format; ``max_cell_chars``
    is the longest value (it is also the CSV reader's ``csv.field_size_limit``);
    ``max_xlsx_unpacked_mb`` is what the parts of an ``.xlsx`` (a ZIP of XML) may unpack to,
    checked before the workbook is read (a million ordinary rows are about 250 MB of XML);
    ``max_parquet_unpacked_mb`` and ``max_parquet_row_groups`` bound a Parquet file's
    uncompressed column data and its row groups, read from its footer before its data.
    """

    max_rows: int = 2_000_000
    max_columns: int = 1_000
    max_cell_chars: int = 1_000_000
    max_xlsx_unpacked_mb: int = 512
    max_parquet_unpacked_mb: int = 1_024
    max_parquet_row_groups: int = 10_000


#: The limits every reader applies unless it is given others.
UPLOAD_LIMITS = UploadLimits()


#: How people sign in: one local user, OpenID Connect (``st.login``), or built-in accounts.
AUTH_MODES = ("local", "oidc", "accounts")


@dataclass(frozen=True)
class Settings:
    """Where Distill keeps its data, which services it uses and how people sign in.

    ``auth`` is ``DISTILL_AUTH`` (default "local": one user, no sign-in, for a server that
    listens on localhost only). ``admins`` are the e-mail addresses (``DISTILL_ADMINS``,
    comma-separated) whose users are administrators when they first sign in.
    """

    home: Path
    database_url: str
    redis_url: str | None = None
    auth: str = "local"
    admins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("DISTILL_HOME") or "distill_data").expanduser().resolve()
        url = env.get("DISTILL_DATABASE_URL") or f"sqlite:///{home / 'distill.db'}"
        auth = (env.get("DISTILL_AUTH") or "local").strip().lower()
        if auth not in AUTH_MODES:
            raise ValueError(f"DISTILL_AUTH is '{auth}'; use one of {', '.join(AUTH_MODES)}.")
        admins = tuple(
            a.strip().lower() for a in (env.get("DISTILL_ADMINS") or "").split(",") if a.strip()
        )
        return cls(
            home=home,
            database_url=url,
            redis_url=env.get("DISTILL_REDIS_URL") or None,
            auth=auth,
            admins=admins,
        )

    @property
    def hosted(self) -> bool:
        """Several people share this instance (any mode but local)."""
        return self.auth != "local"

    @property
    def models_dir(self) -> Path:
        """Where trained students are kept (a lab's GPU workers must see the same folder)."""
        return self.home / "models"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
