"""Input shape rules: the one definition shared by the provider (before any request) and ``mls-local``.

Names, versions, tables and component names end up in places that do not forgive much: a model's
``name`` and ``version`` become the registry key ``<name>/<version>/model.joblib`` (S3) and
``/models/<name>/<version>/...`` paths, a table is a DynamoDB table name and a URL path segment.
So they are checked for shape, and ``model_meta`` (the registry's ``model.json``) must be finite
JSON of a bounded size. Every rule raises ``MLSValidationError(field, message)`` naming the field
(for meta: the path of the offending value, e.g. ``model_meta.performance.auc``); the local server
answers the same message as a 400 envelope.

The rules (see also ``docs/local-server.md``, "Input rules"):

===============  ==========================================  ===========
what             characters                                  length
===============  ==========================================  ===========
name             ``A-Z a-z 0-9 _ - .``, first not ``.``/``-``  1-128
version          same as name                                1-64
component name   same as name                                1-128
table            ``A-Z a-z 0-9 _ - .`` (DynamoDB's rule)      3-255
===============  ==========================================  ===========

None of them may contain ``..``, ``/``, whitespace or control characters (NUL, newline, ...).
``model_meta``: a JSON object of JSON values only (str, int, finite float, bool, None, lists,
objects with string keys), nested at most ``META_MAX_DEPTH`` deep, at most ``META_MAX_BYTES``
serialized (compact UTF-8 JSON). ``mls-local`` refuses request bodies over ``REQUEST_MAX_BYTES``.

Standard library only: DAG files and the local server import it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from airflow_provider_mls.exceptions import MLSValidationError

__all__ = [
    "COMPONENT_MAX_LENGTH",
    "IF_EXISTS",
    "MANUAL_FIELDS",
    "MAX_ID",
    "META_MAX_BYTES",
    "META_MAX_DEPTH",
    "NAME_MAX_LENGTH",
    "REQUEST_MAX_BYTES",
    "TABLE_MAX_LENGTH",
    "TABLE_MIN_LENGTH",
    "VERSION_MAX_LENGTH",
    "check_component",
    "check_id",
    "check_if_exists",
    "check_json",
    "check_meta",
    "check_name",
    "check_table",
    "check_version",
    "json_size",
]

NAME_MAX_LENGTH = 128
VERSION_MAX_LENGTH = 64
COMPONENT_MAX_LENGTH = 128
TABLE_MIN_LENGTH = 3  # DynamoDB: 3 to 255 of [a-zA-Z0-9_.-]
TABLE_MAX_LENGTH = 255
META_MAX_BYTES = 1024 * 1024  # 1 MiB of compact UTF-8 JSON
META_MAX_DEPTH = 32
# mls-local's bound on any request body: a model of the largest meta plus its other fields, as a
# client sends it: JSON encoders escape non-ASCII text by default (up to 6 bytes a character, e.g.
# ``\u0001``; Korean text doubles), so the body of a meta within META_MAX_BYTES can be several times it.
REQUEST_MAX_BYTES = 8 * 1024 * 1024
# Ids are 64-bit signed integers in MLS; a larger one can only be a mistake.
MAX_ID = 2**63 - 1
# What a create does with a (name, version) held by a model it did not write.
IF_EXISTS = ("fail", "skip", "update")
# The fields of a manual model besides model_type, name and version: what a create sends, what
# a PUT carries (the whole model), what the create/update operators take.
MANUAL_FIELDS = (
    "description",
    "creator",
    "model_lib",
    "model_data",
    "model_meta",
    "features",
    "table",
    "components",
)

_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+")
_NAME_CHARS = "letters A-Z a-z, digits, '_', '-' and '.'"


def _show(value: str, limit: int = 40) -> str:
    """A short, printable rendering of a (maybe huge or odd) string for an error message."""
    shown = value if len(value) <= limit else value[:limit] + "..."
    return repr(shown)


def _check_segment(
    value: Any, field: str, what: str, *, min_length: int, max_length: int, leading_dot_dash: bool
) -> str:
    if not isinstance(value, str):
        raise MLSValidationError(field, f"expected a {what} (string), got {type(value).__name__}")
    if not value:
        raise MLSValidationError(field, f"expected a non-empty {what}")
    if value != value.strip():
        raise MLSValidationError(field, f"{_show(value)} has leading or trailing whitespace")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise MLSValidationError(
                field, f"{_show(value)} contains the control character {char!r}; not allowed in a {what}"
            )
    if "/" in value or "\\" in value:
        raise MLSValidationError(
            field, f"{_show(value)} contains a slash; a {what} is one path segment (no '/' or '\\')"
        )
    if ".." in value:
        raise MLSValidationError(field, f"{_show(value)} contains '..'; not allowed in a {what}")
    if len(value) > max_length:
        raise MLSValidationError(
            field, f"is {len(value)} characters long; a {what} has at most {max_length} characters"
        )
    if not _SEGMENT.fullmatch(value):
        bad = next(c for c in value if not _SEGMENT.fullmatch(c))
        raise MLSValidationError(
            field, f"{_show(value)} contains {bad!r}; a {what} may contain only {_NAME_CHARS}"
        )
    if len(value) < min_length:
        raise MLSValidationError(
            field, f"{_show(value)} is too short; a {what} has at least {min_length} characters"
        )
    if not leading_dot_dash and value[0] in ".-":
        raise MLSValidationError(field, f"{_show(value)} starts with {value[0]!r}; a {what} may not")
    return value


def check_name(value: Any, field: str = "name") -> str:
    """A model name: 1-128 of ``A-Z a-z 0-9 _ - .``, not starting with ``.``/``-``, no ``..``."""
    return _check_segment(
        value, field, "model name", min_length=1, max_length=NAME_MAX_LENGTH, leading_dot_dash=False
    )


def check_version(value: Any, field: str = "version") -> str:
    """A model version: 1-64 of ``A-Z a-z 0-9 _ - .``, not starting with ``.``/``-``, no ``..``."""
    return _check_segment(
        value, field, "model version", min_length=1, max_length=VERSION_MAX_LENGTH, leading_dot_dash=False
    )


def check_component(value: Any, field: str = "components") -> str:
    """A component name: the rule of model names (1-128 characters)."""
    return _check_segment(
        value, field, "component name", min_length=1, max_length=COMPONENT_MAX_LENGTH, leading_dot_dash=False
    )


def check_table(value: Any, field: str = "table") -> str:
    """A batch prediction table: DynamoDB's rule (3-255 of ``A-Z a-z 0-9 _ - .``), no ``..``."""
    return _check_segment(
        value,
        field,
        "table name",
        min_length=TABLE_MIN_LENGTH,
        max_length=TABLE_MAX_LENGTH,
        leading_dot_dash=True,
    )


def _key_path(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _walk(value: Any, path: str, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise MLSValidationError(path, f"is nested more than {max_depth} levels deep")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MLSValidationError(
                path, f"must be a finite number, got {value!r} (JSON has no NaN/Infinity)"
            )
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MLSValidationError(
                    path, f"has the key {key!r} ({type(key).__name__}); JSON object keys are strings"
                )
            _walk(item, _key_path(path, key), depth + 1, max_depth)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", depth + 1, max_depth)
        return
    raise MLSValidationError(
        path, f"is a {type(value).__name__}, not a JSON value (str, number, bool, null, list, object)"
    )


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how the size limits are measured)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())


def check_json(
    value: Any, field: str, *, max_bytes: int | None = None, max_depth: int = META_MAX_DEPTH
) -> Any:
    """``value`` is finite JSON (no NaN/Infinity, no non-JSON types, string keys) of at most
    ``max_bytes`` serialized; the error names the path of the offending value (``field.a.b[2]``)."""
    _walk(value, field, 0, max_depth)
    if max_bytes is not None:
        size = json_size(value)
        if size > max_bytes:
            raise MLSValidationError(
                field,
                f"is {size} bytes as JSON; at most {max_bytes} bytes ({max_bytes // 1024} KiB) are allowed",
            )
    return value


def check_meta(value: Any, field: str = "model_meta") -> dict[str, Any]:
    """A model's meta (``model.json``): a JSON object, finite, at most ``META_MAX_BYTES`` serialized."""
    if not isinstance(value, dict):
        raise MLSValidationError(field, f"expected a JSON object (dict), got {type(value).__name__}")
    check_json(value, field, max_bytes=META_MAX_BYTES)
    return value


def check_id(value: object, field: str = "model_id") -> int:
    """A model (or dataset, component) id: an int from 0 to ``MAX_ID`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MLSValidationError(field, f"expected an integer id, got {value!r}")
    if value < 0:
        raise MLSValidationError(field, f"expected a non-negative id, got {value!r}")
    if value > MAX_ID:
        raise MLSValidationError(field, f"{value} is beyond the largest id ({MAX_ID}, 2**63 - 1)")
    return value


def check_if_exists(value: object, allowed: tuple[str, ...] = IF_EXISTS, field: str = "if_exists") -> str:
    """An ``if_exists`` choice among ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise MLSValidationError(field, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; anything else (``0.0.0.0``, a hostname) reaches further.

    The hook speaks ``http`` only to these (``https`` otherwise); ``mls-local`` refuses default
    credentials beyond them."""
    import ipaddress

    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def coerce_id(value: object, field: str) -> int:
    """An id from an int, a rendered template (``"12"``) or a model dict of an upstream task (its ``id``)."""
    if isinstance(value, dict):
        if "id" not in value:
            raise MLSValidationError(field, f"expected a model id or a dict with 'id', got {value!r}")
        value = value["id"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return check_id(value, field)


def coerce_bool(value: object, field: str) -> bool:
    """A bool, also from a rendered template (``"True"``/``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MLSValidationError(field, f"expected true or false, got {value!r}")
