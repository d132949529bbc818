"""Hooks of the MLS provider."""

from __future__ import annotations

from airflow_provider_mls.hooks.mls import MLSHook

__all__ = ["MLSHook"]
