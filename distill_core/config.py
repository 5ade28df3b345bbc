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
class Settings:
    """Where Distill keeps its data and which services it uses."""

    home: Path
    database_url: str
    redis_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("DISTILL_HOME") or "distill_data").expanduser().resolve()
        url = env.get("DISTILL_DATABASE_URL") or f"sqlite:///{home / 'distill.db'}"
        return cls(home=home, database_url=url, redis_url=env.get("DISTILL_REDIS_URL") or None)

    @property
    def models_dir(self) -> Path:
        """Where trained students are kept (a lab's GPU workers must see the same folder)."""
        return self.home / "models"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
