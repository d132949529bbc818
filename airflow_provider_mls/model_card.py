"""Model package model cards: the SageMaker schema, the size limit and a validator that names the field.

A model card's content is a JSON object that must follow the *model package model card* schema
(shipped as ``airflow_provider_mls/data/model_package_model_card.schema.json``, verbatim from the
SageMaker documentation) and, serialized, fit in ``ModelCardContent`` (a string of at most
:data:`MODEL_CARD_MAX_CHARS` characters).

The content is sent as :func:`model_card_json` builds it: compact JSON (``separators=(",", ":")``),
non-ASCII characters kept as they are (``ensure_ascii=False``), keys in the caller's order, no
``NaN``/``Infinity``. The size limit is checked against exactly that string, so send that string.

``jsonschema`` (an Airflow dependency) is imported only when a card is validated, so DAG files that
import the operators stay cheap to parse.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from airflow_provider_mls.exceptions import MLSValidationError

__all__ = [
    "MODEL_CARD_MAX_CHARS",
    "MODEL_CARD_STATUSES",
    "model_card_json",
    "model_card_schema",
    "validate_model_card",
]

# botocore's sagemaker service model, shape ``ModelCardContent``: string, min 0, max 100000.
MODEL_CARD_MAX_CHARS = 100_000

# botocore's shape ``ModelCardStatus``.
MODEL_CARD_STATUSES = ("Draft", "PendingReview", "Approved", "Archived")

_SCHEMA_FILE = "model_package_model_card.schema.json"
_MAX_OTHER_PATHS = 3  # further error paths named after the first one
_REPR_LIMIT = 80


def model_card_json(content: Mapping[str, Any]) -> str:
    """The card as it is sent: compact JSON, non-ASCII kept, no NaN/Infinity (the size limit's yardstick)."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("airflow_provider_mls").joinpath("data", _SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def model_card_schema() -> dict[str, Any]:
    """The model package model card JSON schema (read once from the package data; a copy each call)."""
    return copy.deepcopy(_schema())


@functools.cache
def _validator() -> Any:
    # The schema has no ``$schema``. Draft 2020-12: the newest dialect, the one that defines
    # ``minContains``/``maxContains`` (with 2019-09); ``#/definitions/...`` refs resolve as plain
    # JSON pointers into the document.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    schema = _schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_model_card(
    content: Mapping[str, Any] | str, field: str = "model_card_content"
) -> dict[str, Any]:
    """Check a model card's content; returns it as a new dict (the caller's object is not touched).

    ``content`` is a mapping or a JSON string. Raises :class:`MLSValidationError` whose ``field`` is
    the path of the offending value inside the card, under ``field``: e.g.
    ``model_card_content.intended_uses.risk_rating`` or ``model_card_content.evaluation_details[0].name``.
    When there are several errors, the first by path is raised and its message counts the others.
    Invalid JSON, a non-object, and content whose :func:`model_card_json` is longer than
    :data:`MODEL_CARD_MAX_CHARS` characters name ``field`` itself.
    """
    try:
        if isinstance(content, str):
            parsed = _parse_json(content, field)
        elif isinstance(content, Mapping):
            parsed = content
        else:
            raise MLSValidationError(
                field, f"expected a JSON object (a dict or a JSON string), got {type(content).__name__}"
            )
        if not isinstance(parsed, Mapping):
            raise MLSValidationError(field, f"expected a JSON object, got a JSON {_json_type(parsed)}")
        card: dict[str, Any] = _json_copy(parsed, (), field)
    except RecursionError:
        raise MLSValidationError(field, "is nested too deeply") from None

    errors = sorted(
        {issue for error in _validator().iter_errors(card) for issue in _issues(error)},
        key=lambda issue: (_path_key(issue[0]), issue[1]),
    )
    if errors:
        path, message = errors[0]
        others = [_field(field, p) for p, _ in errors[1:]]
        if others:
            named = ", ".join(dict.fromkeys(others[:_MAX_OTHER_PATHS]))
            more = "..." if len(others) > _MAX_OTHER_PATHS else ""
            message += f" (and {len(others)} more error{'s' if len(others) > 1 else ''}: {named}{more})"
        raise MLSValidationError(_field(field, path), message)

    size = len(model_card_json(card))
    if size > MODEL_CARD_MAX_CHARS:
        raise MLSValidationError(
            field,
            f"is {size} characters as compact JSON, over the limit of {MODEL_CARD_MAX_CHARS} characters",
        )
    return card


# --- input -----------------------------------------------------------------------------------------


def _parse_json(text: str, field: str) -> Any:
    def no_constants(name: str) -> Any:
        raise MLSValidationError(field, f"is not valid JSON: {name} is not a JSON number")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise MLSValidationError(field, f"is not valid JSON for a model card: duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise MLSValidationError(
            field, f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _json_copy(value: Any, path: tuple[str | int, ...], field: str) -> Any:
    """A deep copy made of JSON types only (tuples become lists); anything else names its path."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MLSValidationError(_field(field, path), f"{value!r} is not a JSON number")
        return value
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise MLSValidationError(
                    _field(field, path), f"keys must be strings, got {type(key).__name__} {key!r}"
                )
            copied[key] = _json_copy(item, (*path, key), field)
        return copied
    if isinstance(value, (list, tuple)):
        return [_json_copy(item, (*path, index), field) for index, item in enumerate(value)]
    raise MLSValidationError(_field(field, path), f"{type(value).__name__} is not a JSON type")


# --- errors ----------------------------------------------------------------------------------------

_Issue = tuple[tuple[str | int, ...], str]


def _issues(error: Any) -> list[_Issue]:
    """``(path inside the card, message)`` for one jsonschema error, made specific where it can be."""
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    kind = error.validator
    instance = error.instance
    value = error.validator_value

    if kind in ("anyOf", "oneOf") and error.context:
        return _branch_issues(error)
    if kind == "required" and isinstance(instance, Mapping):
        return [((*path, name), f"{name!r} is a required property") for name in value if name not in instance]
    if kind == "additionalProperties" and value is False and isinstance(instance, Mapping):
        allowed = list(error.schema.get("properties", {}))
        expected = f"expected one of {allowed}" if allowed else "no properties are allowed"
        return [
            ((*path, key), f"{key!r} is not an allowed property ({expected})")
            for key in _extra_keys(instance, error.schema)
        ]
    if kind == "type":
        expected_types = value if isinstance(value, list) else [value]
        return [(path, f"{_short(instance)} is not of type {', '.join(map(repr, expected_types))}")]
    if kind == "enum":
        return [(path, f"{_short(instance)} is not one of {value!r}")]
    if kind in ("maxLength", "minLength") and isinstance(instance, str):
        bound = "at most" if kind == "maxLength" else "at least"
        return [(path, f"is {len(instance)} characters long, expected {bound} {value}")]
    if kind in ("maxItems", "minItems") and isinstance(instance, list):
        bound = "at most" if kind == "maxItems" else "at least"
        return [(path, f"has {len(instance)} items, expected {bound} {value}")]
    if kind == "pattern":
        return [(path, f"{_short(instance)} does not match {value!r}")]
    message = str(error.message)
    if len(message) > 300:
        message = message[:297] + "..."
    return [(path, message)]


def _branch_issues(error: Any) -> list[_Issue]:
    """Errors of the ``anyOf`` branch the value was most likely meant for.

    The metric kinds are told apart by their ``type`` enum: a branch whose ``type`` matches wins,
    then a branch whose JSON type matches, then the branch with the fewest errors. When no branch's
    ``type`` matches, one error lists every allowed ``type``.
    """
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def discriminator_errors(subs: list[Any]) -> list[Any]:
        return [
            s
            for s in subs
            if s.validator in ("enum", "const") and len(s.relative_path) == 1 and not s.context
        ]

    def rank(subs: list[Any]) -> tuple[bool, bool, int]:
        wrong_kind = bool(discriminator_errors(subs))
        wrong_type = any(s.validator == "type" and not s.relative_path for s in subs)
        return (wrong_kind, wrong_type, len(subs))

    ordered = list(branches.values())  # in the order of the anyOf
    mismatches = [discriminator_errors(subs) for subs in ordered]
    if len(ordered) > 1 and all(mismatches):
        names = {tuple(s.relative_path) for subs in mismatches for s in subs}
        if len(names) == 1:
            allowed: list[Any] = []
            for subs in mismatches:
                for s in subs:
                    options = s.validator_value if s.validator == "enum" else [s.validator_value]
                    allowed.extend(o for o in options if o not in allowed)
            sub = mismatches[0][0]
            return [(tuple(sub.absolute_path), f"{_short(sub.instance)} is not one of {allowed!r}")]

    best = min(ordered, key=rank)
    return [issue for sub in best for issue in _issues(sub)]


def _extra_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(re.search(pattern, key) for pattern in patterns)
    ]


def _field(root: str, path: tuple[str | int, ...]) -> str:
    """``root.a.b[0].c``; keys that are not identifiers are written ``['a key']``."""
    parts = [root]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            parts.append(f"[{part!r}]")
    return "".join(parts)


def _path_key(path: tuple[str | int, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__
