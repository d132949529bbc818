"""SQLite persistence of the local MLS server, by resource.

``Store`` is the one object the app holds: the persistence core (``db``: the connection, transactions,
schema), models and components (``models``), AutoML datasets, training and servers (``automl``), and
experiments and buckets (``experiments``) over the same database.
"""

from __future__ import annotations

from airflow_provider_mls.local.store.automl import AutoMLStore
from airflow_provider_mls.local.store.db import DB_FILE, Database, iso
from airflow_provider_mls.local.store.experiments import ExperimentStore

__all__ = ["DB_FILE", "Database", "Store", "iso"]


class Store(ExperimentStore, AutoMLStore):
    """Every resource of the local MLS server over one SQLite database (``Database``)."""
