"""The MLS sensors, by their first import path (kept): each lives in the module of its resource.

``sensors.prediction_table`` (batch prediction tables), ``sensors.model_registry`` (registry
artifacts) and ``sensors.automl`` (AutoML trainings). Every sensor works in ``poke``,
``reschedule`` and deferrable modes; see ``airflow_provider_mls.bases.WaitSensor``.
"""

from __future__ import annotations

from airflow_provider_mls.sensors.automl import AutoMLTrainingDoneSensor
from airflow_provider_mls.sensors.model_registry import OnlinePredictionReadySensor
from airflow_provider_mls.sensors.prediction_table import BatchPredictionReadySensor

__all__ = ["AutoMLTrainingDoneSensor", "BatchPredictionReadySensor", "OnlinePredictionReadySensor"]
