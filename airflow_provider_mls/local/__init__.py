"""The local MLS server: the MLS REST API served from SQLite, for development and tests.

No Airflow imports here or below. ``LocalMLSServer`` starts it as a subprocess; ``mls-local``
(``python -m airflow_provider_mls.local``) runs it in the foreground; ``create_app`` (in
``airflow_provider_mls.local.app``, needs fastapi) builds the ASGI app.
"""

from __future__ import annotations

from airflow_provider_mls.local.process import LocalMLSServer

__all__ = ["LocalMLSServer"]
