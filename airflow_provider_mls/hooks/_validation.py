"""Input checks that run before any request is sent; each failure names its field.

Values that are written (names, versions, tables, component names, meta) pass the shape rules of
``airflow_provider_mls.rules``, the ones ``mls-local`` applies too; values that only look
something up need only be non-empty, so a model stored before a rule existed stays reachable.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_mls import rules
from airflow_provider_mls.constants import MODEL_LIBS, PREDICTION_TYPES
from airflow_provider_mls.exceptions import MLSValidationError

MAX_ID = rules.MAX_ID


def check_str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MLSValidationError(field, f"expected a non-empty string, got {value!r}")
    return value


def check_optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MLSValidationError(field, f"expected a string, got {type(value).__name__}")
    return value


check_id = rules.check_id


def check_not_before(value: object, field: str = "not_before") -> datetime | None:
    """A create's ``not_before``: None or an aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise MLSValidationError(field, f"expected a timezone-aware datetime, got {value!r}")
    return value


def model_id(model: object, field: str = "model_id") -> int:
    """The id of ``model``: an int id, or a model dict as returned by the hook."""
    if isinstance(model, Mapping):
        if "id" not in model:
            raise MLSValidationError(field, "model dict has no 'id'")
        return check_id(model["id"], field)
    return check_id(model, field)


def check_name(value: object, field: str = "name") -> str:
    """A model name to write: the shape rule of ``rules.check_name``."""
    return rules.check_name(value, field)


def check_version(value: object, field: str = "version") -> str:
    return rules.check_version(value, field)


def check_table(value: object, field: str = "table") -> str | None:
    """A table to write; ``None`` and ``""`` (clear it) give ``None``."""
    if value is None or value == "":
        return None
    return rules.check_table(value, field)


def check_model_lib(value: object, field: str = "model_lib") -> str | None:
    if value is None:
        return None
    if value not in MODEL_LIBS:
        raise MLSValidationError(
            field, f"unknown model_lib {value!r}; expected one of {', '.join(MODEL_LIBS)}"
        )
    return str(value)


def string_hint(value: object) -> str:
    """What to do when a dict field got a string: a Jinja template renders to text."""
    if not isinstance(value, str):
        return ""
    return (
        f" ({value[:80]!r}{'...' if len(value) > 80 else ''}). A templated value such as "
        '"{{ ti.xcom_pull(...) }}" renders to a string: pass the upstream task\'s output itself '
        "(an XComArg: other_task.output, or the return value of a @task), or create the DAG with "
        "render_template_as_native_obj=True"
    )


def check_json_dict(
    value: object, field: str, *, max_bytes: int | None = rules.META_MAX_BYTES
) -> dict[str, Any]:
    """A copy of a mapping of finite JSON values, as it will be stored (tuples become lists).

    The caller's dict is never touched. NaN/Infinity or a non-JSON value fail naming its path
    (``model_meta.performance.auc``); more than ``max_bytes`` as compact JSON fails too.
    """
    if not isinstance(value, Mapping):
        raise MLSValidationError(field, f"expected a dict, got {type(value).__name__}{string_hint(value)}")
    plain = dict(value)
    rules.check_json(plain, field, max_bytes=max_bytes)
    copied: dict[str, Any] = json.loads(json.dumps(plain, allow_nan=False))
    return copied


def check_meta(value: object, field: str = "model_meta") -> dict[str, Any]:
    """A model's meta: finite JSON of at most ``rules.META_MAX_BYTES`` (the registry's ``model.json``)."""
    return check_json_dict(value, field, max_bytes=rules.META_MAX_BYTES)


def check_features(value: object, field: str = "features") -> str | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``"a,b"``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(f, str) and f for f in value):
        return ",".join(value)
    raise MLSValidationError(field, f"expected a comma-separated string or a list of strings, got {value!r}")


def component_names(value: object, field: str = "components") -> list[str] | None:
    """Component names from names or component dicts (their ``name``)."""
    if value is None:
        return None
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise MLSValidationError(field, f"expected a list of component names or dicts, got {value!r}")
    names: list[str] = []
    for item in value:
        name = item.get("name") if isinstance(item, Mapping) else item
        if not isinstance(name, str) or not name:
            raise MLSValidationError(field, f"expected a component name or a dict with 'name', got {item!r}")
        names.append(name)
    return names


def check_components(value: object, field: str = "components") -> list[str] | None:
    """Component names to write: ``component_names`` whose every name passes ``rules.check_component``."""
    names = component_names(value, field)
    for index, name in enumerate(names or []):
        rules.check_component(name, f"{field}[{index}]")
    return names


def check_prediction_type(value: object, field: str = "prediction_type") -> str:
    if value not in PREDICTION_TYPES:
        raise MLSValidationError(
            field, f"unknown prediction_type {value!r}; expected one of {', '.join(PREDICTION_TYPES)}"
        )
    return str(value)


def check_handler(value: object, field: str = "handler") -> str:
    """The handler source must be Python that parses; the SyntaxError's line is in the message."""
    if not isinstance(value, str) or not value.strip():
        raise MLSValidationError(field, "expected Python source code as a non-empty string")
    try:
        ast.parse(value)
    except SyntaxError as exc:
        raise MLSValidationError(field, f"does not parse as Python: line {exc.lineno}: {exc.msg}") from None
    return value
