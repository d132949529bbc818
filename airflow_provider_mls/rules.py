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

Every other argument's rule lives here too, by resource (MLS models, the model registry, prediction
tables, the SageMaker Model Registry); a value that only looks something up need only be non-empty
(``check_str``), so a model stored before a rule existed stays reachable. Standard library only.
"""

from __future__ import annotations

import ast
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_mls.constants import MODEL_LIBS, PREDICTION_TYPES
from airflow_provider_mls.exceptions import MLSValidationError

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

# ---- names, versions, components and tables: one path segment each -------------------------------

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


# ---- JSON values: a model's meta, a bucket move's static value, the registry's meta keys -----------


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


def plain_json(value: Any, field: str, *, max_bytes: int | None = None) -> Any:
    """A copy of finite JSON ``value`` as it will be stored (tuples become lists); see ``check_json``."""
    check_json(value, field, max_bytes=max_bytes)
    return json.loads(json.dumps(value, allow_nan=False))


def check_json_dict(value: object, field: str, *, max_bytes: int | None = META_MAX_BYTES) -> dict[str, Any]:
    """A copy of a mapping of finite JSON values, as it will be stored (tuples become lists).

    The caller's dict is never touched. NaN/Infinity or a non-JSON value fail naming its path
    (``model_meta.performance.auc``); more than ``max_bytes`` as compact JSON fails too. What the
    hook checks a ``model_meta`` argument with (``check_meta`` is the server's: no copy).
    """
    if not isinstance(value, Mapping):
        raise MLSValidationError(field, f"expected a dict, got {type(value).__name__}{string_hint(value)}")
    copied: dict[str, Any] = plain_json(dict(value), field, max_bytes=max_bytes)
    return copied


# ---- plain values: strings, ids, choices ---------------------------------------------------------


def check_str(value: object, field: str) -> str:
    """A non-empty string (a name or version that only looks something up, an ARN, a library version)."""
    if not isinstance(value, str) or not value.strip():
        raise MLSValidationError(field, f"expected a non-empty string, got {value!r}")
    return value


def check_optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MLSValidationError(field, f"expected a string, got {type(value).__name__}")
    return value


def check_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise MLSValidationError(field, f"expected true or false, got {value!r}")
    return value


def check_int(value: Any, field: str, low: int, high: int | None = None) -> int:
    """An int (not a bool) from ``low`` to ``high`` (no upper bound when None)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise MLSValidationError(field, f"expected an integer {bounds}, got {value!r}")
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


def check_choice(value: object, field: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise MLSValidationError(field, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def check_if_exists(value: object, allowed: tuple[str, ...] = IF_EXISTS, field: str = "if_exists") -> str:
    """An ``if_exists`` choice among ``allowed``."""
    return check_choice(value, field, allowed)


# ---- MLS models ----------------------------------------------------------------------------------


def model_id(model: object, field: str = "model_id") -> int:
    """The id of ``model``: an int id, or a model dict as returned by the hook."""
    if isinstance(model, Mapping):
        if "id" not in model:
            raise MLSValidationError(field, "model dict has no 'id'")
        return check_id(model["id"], field)
    return check_id(model, field)


def check_not_before(value: object, field: str = "not_before") -> datetime | None:
    """A create's ``not_before``: None or an aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise MLSValidationError(field, f"expected a timezone-aware datetime, got {value!r}")
    return value


def check_model_lib(value: object, field: str = "model_lib", *, required: bool = False) -> str | None:
    """One of ``MODEL_LIBS`` (None: not given, unless ``required``)."""
    if value is None and not required:
        return None
    if value not in MODEL_LIBS:
        raise MLSValidationError(
            field, f"unknown model_lib {value!r}; expected one of {', '.join(MODEL_LIBS)}"
        )
    return str(value)


def check_feature_names(value: Any, field: str = "features") -> list[str]:
    """A non-empty list of unique feature names, none blank or holding a comma; ``"a,b"`` is split.

    MLS keeps a model's features as one comma-separated string, the registry's ``model.json`` as a list.
    """
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, bytes) or not isinstance(value, Sequence) or not value:
        raise MLSValidationError(
            field, f"expected a non-empty list of feature names (or 'a,b,c'), got {value!r}"
        )
    seen: set[str] = set()
    for index, feature in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(feature, str) or not feature.strip():
            raise MLSValidationError(where, f"expected a non-empty string, got {feature!r}")
        if "," in feature:
            raise MLSValidationError(where, f"a feature name cannot hold a comma: {feature!r}")
        if feature in seen:
            raise MLSValidationError(where, f"duplicate feature {feature!r}")
        seen.add(feature)
    return list(value)


def check_features(value: object, field: str = "features") -> str | None:
    """A model's ``features``: a string as given (``""`` clears them), or a list of names (the rule
    of ``check_feature_names``) joined: ``["a", "b"]`` -> ``"a,b"``; ``[]`` -> ``""``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(f, str) and f for f in value):
        return ",".join(check_feature_names(value, field)) if value else ""
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
    """Component names to write: ``component_names`` whose every name passes ``check_component``."""
    names = component_names(value, field)
    for index, name in enumerate(names or []):
        check_component(name, f"{field}[{index}]")
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


# ---- the model registry (S3) ---------------------------------------------------------------------

# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_bucket(value: object, origin: str, field: str = "bucket") -> str:
    """An S3 bucket name; ``origin`` says where it came from."""
    if not isinstance(value, str) or not _BUCKET.fullmatch(value) or ".." in value:
        raise MLSValidationError(field, f"{value!r} (from {origin}) is not an S3 bucket name")
    return value


# ---- batch prediction tables (DynamoDB) ---------------------------------------------------------


def check_dynamodb_table(value: Any, field: str = "table") -> str:
    """``check_table``, its error told as the DynamoDB hook's callers read it."""
    try:
        return check_table(value, field)
    except MLSValidationError:
        raise MLSValidationError(
            field, f"expected a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -, no '..'), got {value!r}"
        ) from None


def check_attribute(name: Any, field: str) -> str:
    """A DynamoDB attribute name: 1-255 bytes."""
    if not isinstance(name, str) or not 1 <= len(name.encode()) <= 255:
        raise MLSValidationError(field, f"expected an attribute name of 1-255 bytes, got {name!r}")
    return name


# ---- the SageMaker Model Registry (limits of botocore's service model; the shape after each) ------

MAX_METADATA_KEYS = 50  # CustomerMetadataMap
MAX_METADATA_KEY_LENGTH = 128  # CustomerMetadataKey, 1..128
MAX_METADATA_VALUE_LENGTH = 256  # CustomerMetadataValue, 1..256
_METADATA_SYMBOLS = frozenset("_.:/=+-@")  # besides letters, numbers and separators (\p{L}\p{Z}\p{N})
MAX_DESCRIPTION_LENGTH = 1024  # EntityDescription, ApprovalDescription
MAX_PAGE_SIZE = 100  # MaxResults
_GROUP_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # EntityName
_CLIENT_TOKEN = re.compile(r"[a-zA-Z0-9-]{1,36}")
_MODEL_DATA_URL = re.compile(r"(https|s3)://([^/]+)/?(.*)")  # Url
_MAX_MODEL_DATA_URL_LENGTH = 1024
_MAX_IMAGE_LENGTH = 255  # ContainerImage


def check_text(value: Any, field: str, max_length: int, *, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise MLSValidationError(field, f"expected a str, got {type(value).__name__}")
    if not min_length <= len(value) <= max_length:
        raise MLSValidationError(field, f"expected {min_length} to {max_length} characters, got {len(value)}")
    return value


def check_group(group: Any, field: str = "group") -> str:
    """A model package group name (what ``create_model_package_group`` accepts)."""
    if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
        raise MLSValidationError(
            field,
            f"expected a model package group name (1-63 letters, digits and inner hyphens), got {group!r}",
        )
    return group


def check_arn(arn: Any, field: str = "arn") -> str:
    """A model package version's ARN (``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n>``)."""
    if not isinstance(arn, str) or ":model-package/" not in arn:
        raise MLSValidationError(field, f"expected a model package ARN, got {arn!r}")
    return arn


def check_model_data_url(value: Any, field: str = "model_data_url") -> str:
    """An ``s3://`` or ``https://`` URL of at most 1024 characters."""
    check_text(value, field, _MAX_MODEL_DATA_URL_LENGTH, min_length=1)
    if not _MODEL_DATA_URL.fullmatch(value):
        raise MLSValidationError(field, f"expected an s3:// or https:// URL, got {value!r}")
    return str(value)


def check_image(value: Any, field: str = "image") -> str:
    """A container image URI: 1-255 characters, no spaces."""
    check_text(value, field, _MAX_IMAGE_LENGTH, min_length=1)
    if any(c.isspace() for c in value):
        raise MLSValidationError(field, f"expected an image URI without spaces, got {value!r}")
    return str(value)


def check_client_token(value: Any, field: str = "client_token") -> str | None:
    if value is not None and (not isinstance(value, str) or not _CLIENT_TOKEN.fullmatch(value)):
        raise MLSValidationError(field, f"expected 1-36 letters, digits or hyphens, got {value!r}")
    return value


def check_version_number(value: Any, field: str = "version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MLSValidationError(field, f"expected a version number >= 1, got {value!r}")
    return value


def check_page_size(value: Any, field: str = "page_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise MLSValidationError(field, f"expected an int from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return value


def check_metadata_string(text: Any, field: str, what: str, max_length: int) -> str:
    if not isinstance(text, str):
        raise MLSValidationError(field, f"expected a str {what}, got {type(text).__name__}")
    if not 1 <= len(text) <= max_length:
        raise MLSValidationError(field, f"a {what} has 1 to {max_length} characters, got {len(text)}")
    bad = [c for c in text if unicodedata.category(c)[0] not in "LZN" and c not in _METADATA_SYMBOLS]
    if bad:
        raise MLSValidationError(
            field, f"{what} {text!r} has {bad[0]!r}; allowed: letters, digits, spaces and _ . : / = + - @"
        )
    return text


def check_metadata(metadata: Any, field: str = "customer_metadata") -> dict[str, str]:
    """``CustomerMetadataProperties``: at most 50 str keys (1-128 chars) to str values (1-256 chars)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MLSValidationError(field, f"expected a mapping of str to str, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise MLSValidationError(field, f"at most {MAX_METADATA_KEYS} keys, got {len(metadata)}")
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        check_metadata_string(key, field, "key", MAX_METADATA_KEY_LENGTH)
        checked[key] = check_metadata_string(value, f"{field}[{key!r}]", "value", MAX_METADATA_VALUE_LENGTH)
    return checked


def check_metadata_keys(keys: Any, field: str = "remove_metadata_keys") -> list[str]:
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence | set | frozenset):
        raise MLSValidationError(field, f"expected a list of keys, got {type(keys).__name__}")
    return [check_metadata_string(key, field, "key", MAX_METADATA_KEY_LENGTH) for key in keys]


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


# ---- connections ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (the hook's ``http`` hosts; ``mls-local``'s default credentials)."""
    import ipaddress

    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
