"""Hooks of the MLS provider."""

from __future__ import annotations

from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook
from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

__all__ = ["MLSHook", "MLSModelRegistryHook", "PredictionTableHook"]
