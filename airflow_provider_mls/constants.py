"""Names and values of the MLS protocol (``docs/mls-api.md``), shared by the hook and the local server.

No Airflow imports here: the local server imports this module too.
"""

from __future__ import annotations

from enum import StrEnum


class MLSEnv(StrEnum):
    DEV = "dev"
    STG = "stg"
    PRD = "prd"
    DEV_LAND = "dev_land"
    STG_LAND = "stg_land"
    PRD_LAND = "prd_land"
    LOCAL = "local"


class MLSRuntimeEnv(StrEnum):
    YE = "YE"
    EDD = "EDD"
    LOCAL = "LOCAL"


DEFAULT_ENV = MLSEnv.STG
DEFAULT_RUNTIME_ENV = MLSRuntimeEnv.LOCAL

# (runtime_env, env) -> base URL, exactly the table of mls-api.md.
BASE_URLS: dict[tuple[MLSRuntimeEnv, MLSEnv], str] = {
    (MLSRuntimeEnv.YE, MLSEnv.DEV): "https://ab-internal.dev.sktmls.com",
    (MLSRuntimeEnv.YE, MLSEnv.STG): "https://ab-internal.stg.sktmls.com",
    (MLSRuntimeEnv.YE, MLSEnv.PRD): "https://ab-internal.sktmls.com",
    (MLSRuntimeEnv.YE, MLSEnv.DEV_LAND): "https://ab-internal.dev.sktmls.ai",
    (MLSRuntimeEnv.YE, MLSEnv.STG_LAND): "https://ab-internal.stg.sktmls.ai",
    (MLSRuntimeEnv.YE, MLSEnv.PRD_LAND): "https://ab-internal.sktmls.ai",
    (MLSRuntimeEnv.EDD, MLSEnv.DEV): "http://ab-onprem.dev.sktmls.com",
    (MLSRuntimeEnv.EDD, MLSEnv.STG): "http://ab-onprem.stg.sktmls.com",
    (MLSRuntimeEnv.EDD, MLSEnv.PRD): "http://ab-onprem.sktmls.com",
    (MLSRuntimeEnv.LOCAL, MLSEnv.LOCAL): "http://ab.local.sktmls.com:8000",
    (MLSRuntimeEnv.LOCAL, MLSEnv.DEV): "https://ab.dev.sktmls.com",
    (MLSRuntimeEnv.LOCAL, MLSEnv.STG): "https://ab.stg.sktmls.com",
    (MLSRuntimeEnv.LOCAL, MLSEnv.PRD): "https://ab.sktmls.com",
    (MLSRuntimeEnv.LOCAL, MLSEnv.DEV_LAND): "https://ab.dev.sktmls.ai",
    (MLSRuntimeEnv.LOCAL, MLSEnv.STG_LAND): "https://ab.stg.sktmls.ai",
    (MLSRuntimeEnv.LOCAL, MLSEnv.PRD_LAND): "https://ab.sktmls.ai",
}


class ModelType(StrEnum):
    MANUAL = "manual"
    AUTOML = "automl"


MODEL_LIBS: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm", "catboost", "rule", "autogluon", "etc")


class ModelStatus(StrEnum):
    """``status`` of a model. Manual models are IN_USE / NOT_IN_USE; AutoML training goes TRAINING -> DONE | FAILED."""

    IN_USE = "IN_USE"
    NOT_IN_USE = "NOT_IN_USE"
    TRAINING = "TRAINING"
    DONE = "DONE"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: object) -> ModelStatus:
        """Any value the service sends; anything unrecognised is UNKNOWN (never success)."""
        try:
            return cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN


class ServerStatus(StrEnum):
    """Status of an AutoML model server. A start goes STARTING -> RUNNING (or FAILED), a stop STOPPING -> STOPPED."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: object) -> ServerStatus:
        try:
            return cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN


SERVER_START_FAILURE_STATUSES = frozenset({ServerStatus.FAILED, ServerStatus.UNKNOWN})


PREDICTION_TYPES: tuple[str, ...] = ("online", "batch", "automl", "static", "empty")
# prediction_type -> the key that names the serving model in bucket and migration requests.
PREDICTION_MODEL_KEYS: dict[str, str] = {
    "online": "online_model_id",
    "batch": "batch_model_id",
    "automl": "automl_model_id",
}
DATASET_TYPES: tuple[str, ...] = ("score", "classification", "regression")

# The model registry: an S3 bucket per MLS env (mls-api.md). The "_land" envs and the local
# server share the bucket of their base env (an assumption: mls-api.md names only three buckets);
# a connection's ``registry_bucket`` extra overrides this table.
REGISTRY_BUCKETS: dict[MLSEnv, str] = {
    MLSEnv.DEV: "mls-model-registry",
    MLSEnv.STG: "mls-model-registry-stg",
    MLSEnv.PRD: "mls-model-registry-prd",
    MLSEnv.DEV_LAND: "mls-model-registry",
    MLSEnv.STG_LAND: "mls-model-registry-stg",
    MLSEnv.PRD_LAND: "mls-model-registry-prd",
    MLSEnv.LOCAL: "mls-model-registry",
}
# A version's files: <name>/<version>/model.joblib and <name>/<version>/model.json.
MODEL_FILE = "model.joblib"
META_FILE = "model.json"
# The optional keys of model.json (mls-api.md, "The model registry"); the required ones are
# what MLSModelRegistryHook.build_meta writes.
MODEL_META_OPTIONAL: tuple[str, ...] = ("class", "metric", "performance", "feature_importance", "model_info")


def registry_key(name: str, version: str, filename: str) -> str:
    """The S3 key of one of a version's files: ``<name>/<version>/<filename>``."""
    return f"{name}/{version}/{filename}"


def model_data_path(name: str, version: str) -> str:
    """``model_data`` of a version as MLS names it: ``/models/<name>/<version>/model.joblib``."""
    return f"/models/{name}/{version}/{MODEL_FILE}"


# Batch prediction tables are DynamoDB tables. While rows go in, the table carries this tag with
# the value "true"; MLS's is_loading answers from it (the tag is removed once the load is done).
LOADING_TAG = "mls:loading"
