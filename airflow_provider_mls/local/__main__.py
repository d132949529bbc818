"""``python -m airflow_provider_mls.local``: same as ``mls-local``."""

from __future__ import annotations

import sys

from airflow_provider_mls.local.cli import main

sys.exit(main())
