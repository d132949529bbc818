"""Settings of the local MLS server (CLI flags / ``MLS_LOCAL_*`` environment variables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    username: str = "mls"
    password: str = "mls"
    training_seconds: float = 5.0
    server_start_seconds: float = 3.0
    page_size: int = 20
