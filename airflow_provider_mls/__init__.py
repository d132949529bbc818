"""Apache Airflow provider for MLS, the ML service of the ``sktmls`` SDK."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
