"""Model package model cards: the shipped schema, field-naming validation and the content size limit."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.model_card import (
    MODEL_CARD_MAX_CHARS,
    MODEL_CARD_STATUSES,
    model_card_json,
    model_card_schema,
    validate_model_card,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "airflow_provider_mls" / "data" / "model_package_model_card.schema.json"
SEED = REPO_ROOT.parent / "shared" / "seeds" / "002_97a44713ecaef4bc.txt"


def full_card() -> dict[str, Any]:
    """A card that uses every section of the schema and every metric kind."""
    return {
        "model_overview": {
            "model_creator": "ml-platform team",
            "model_artifact": ["s3://bucket/models/churn/1/model.tar.gz"],
        },
        "intended_uses": {
            "purpose_of_model": "Predict churn.",
            "intended_uses": "Retention campaigns.",
            "factors_affecting_model_efficiency": "Seasonality.",
            "risk_rating": "Low",
            "explanations_for_risk_rating": "Advisory use only.",
        },
        "business_details": {
            "business_problem": "Customer churn.",
            "business_stakeholders": "Marketing.",
            "line_of_business": "Mobile.",
        },
        "training_details": {
            "objective_function": {
                "function": {"function": "Minimize", "facet": "loss", "condition": "logloss"},
                "notes": "Binary cross-entropy.",
            },
            "training_observations": "Converged after 30 epochs.",
            "training_job_details": {
                "training_arn": "arn:aws:sagemaker:ap-northeast-2:123456789012:training-job/churn-1",
                "training_datasets": ["s3://bucket/data/train.parquet"],
                "training_environment": {"container_image": ["123456789012.dkr.ecr/xgb:1.7"]},
                "training_metrics": [{"name": "train:logloss", "value": 0.21, "notes": "final"}],
                "user_provided_training_metrics": [{"name": "auc", "value": 0.91}],
                "hyper_parameters": [{"name": "max_depth", "value": "6"}],
                "user_provided_hyper_parameters": [{"name": "eta", "value": "0.1"}],
            },
        },
        "evaluation_details": [
            {
                "name": "holdout-2024-06",
                "evaluation_observation": "Stable across segments.",
                "evaluation_job_arn": "arn:aws:sagemaker:ap-northeast-2:123456789012:processing-job/eval-1",
                "datasets": ["s3://bucket/data/holdout.parquet"],
                "metadata": {"owner": "ml-platform", "ticket": "MLS-123"},
                "metric_groups": [
                    {
                        "name": "binary_classification",
                        "metric_data": [
                            {"name": "auc", "type": "number", "value": 0.91},
                            {"name": "threshold_kind", "type": "string", "value": "youden"},
                            {"name": "calibrated", "type": "boolean", "value": True, "notes": "isotonic"},
                            {
                                "name": "roc",
                                "type": "linear_graph",
                                "value": [[0.0, 0.0], [0.1, 0.6], [1.0, 1.0]],
                                "x_axis_name": "fpr",
                                "y_axis_name": "tpr",
                            },
                            {
                                "name": "feature_importance",
                                "type": "bar_chart",
                                "value": [0.5, 0.3, 0.2],
                                "x_axis_name": ["tenure", "plan", "usage"],
                                "y_axis_name": "gain",
                            },
                            {
                                "name": "confusion_matrix",
                                "type": "matrix",
                                "value": [[90, 10], [5, 95]],
                                "x_axis_name": ["stay", "churn"],
                                "y_axis_name": ["stay", "churn"],
                            },
                        ],
                    }
                ],
            }
        ],
        "additional_information": {
            "ethical_considerations": "No protected attributes used.",
            "caveats_and_recommendations": "Retrain quarterly.",
            "custom_details": {"team": "ml-platform", "slack": "#ml-platform", "한국어 키": "값"},
        },
    }


def assert_invalid(content: Any, field: str, *message_parts: str) -> MLSValidationError:
    with pytest.raises(MLSValidationError) as info:
        validate_model_card(content)
    assert info.value.field == field, str(info.value)
    for part in message_parts:
        assert part in str(info.value), str(info.value)
    return info.value


def with_metric(metric: Any) -> dict[str, Any]:
    return {"evaluation_details": [{"name": "e", "metric_groups": [{"name": "g", "metric_data": [metric]}]}]}


METRIC = "model_card_content.evaluation_details[0].metric_groups[0].metric_data[0]"


# --- the schema ------------------------------------------------------------------------------------


def test_schema_is_shipped_and_loaded() -> None:
    schema = model_card_schema()
    assert schema["title"] == "SageMakerModelCardSchema"
    assert schema == json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema["properties"].clear()  # a copy: the validator's schema is not affected
    assert model_card_schema()["properties"]
    validate_model_card(full_card())


@pytest.mark.skipif(not SEED.exists(), reason="the seed document is not checked out next to the repo")
def test_schema_file_is_the_seed_schema_verbatim() -> None:
    line = next(
        line for line in SEED.read_text(encoding="utf-8").splitlines() if '"SageMakerModelCardSchema"' in line
    )
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json.loads(line)


def test_constants_match_botocore() -> None:
    botocore = pytest.importorskip("botocore")
    service = next((Path(botocore.__file__).parent / "data" / "sagemaker").glob("*/service-2.json*"))
    opener: Any = gzip.open if service.suffix == ".gz" else open
    with opener(service, "rt", encoding="utf-8") as handle:
        shapes = json.load(handle)["shapes"]
    assert shapes["ModelCardContent"]["max"] == MODEL_CARD_MAX_CHARS == 100_000
    assert tuple(shapes["ModelCardStatus"]["enum"]) == MODEL_CARD_STATUSES


def test_jsonschema_is_imported_only_when_validating() -> None:
    code = (
        "import sys, airflow_provider_mls.model_card as m\n"
        "assert 'jsonschema' not in sys.modules\n"
        "m.validate_model_card({})\n"
        "assert 'jsonschema' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


# --- valid cards -----------------------------------------------------------------------------------


def test_full_card_is_returned_unchanged_as_a_copy() -> None:
    card = full_card()
    before = copy.deepcopy(card)
    result = validate_model_card(card)
    assert result == before
    assert card == before
    assert result is not card
    result["evaluation_details"][0]["metric_groups"][0]["metric_data"].clear()
    result["model_overview"]["model_artifact"].append("s3://other")
    assert card == before


def test_json_string_input() -> None:
    card = full_card()
    assert validate_model_card(json.dumps(card, indent=2)) == card
    assert validate_model_card(model_card_json(card)) == card
    assert validate_model_card("{}") == {}


def test_tuples_are_sent_as_arrays() -> None:
    card = {"model_overview": {"model_artifact": ("s3://a", "s3://b")}}
    assert validate_model_card(card) == {"model_overview": {"model_artifact": ["s3://a", "s3://b"]}}


def test_model_card_json_is_compact_and_keeps_non_ascii() -> None:
    assert model_card_json({"a": [1, 2], "b": "값"}) == '{"a":[1,2],"b":"값"}'


# --- errors name the path inside the card ----------------------------------------------------------


def test_enum() -> None:
    card = full_card()
    card["intended_uses"]["risk_rating"] = "Extreme"
    error = assert_invalid(card, "model_card_content.intended_uses.risk_rating")
    assert str(error).endswith("'Extreme' is not one of ['High', 'Medium', 'Low', 'Unknown']")
    assert error.code is None  # caught before any request: no server code


def test_max_length() -> None:
    card = full_card()
    card["model_overview"]["model_creator"] = "x" * 1025
    error = assert_invalid(
        card, "model_card_content.model_overview.model_creator", "1025 characters", "at most 1024"
    )
    assert "xxxx" not in str(error)  # the value itself is not echoed


def test_unknown_top_level_section() -> None:
    card = full_card()
    card["unknown_section"] = {"a": 1}
    assert_invalid(card, "model_card_content.unknown_section", "'unknown_section' is not an allowed property")


def test_unknown_nested_key() -> None:
    card = full_card()
    card["training_details"]["training_job_details"]["training_environment"]["gpu"] = "a100"
    assert_invalid(
        card,
        "model_card_content.training_details.training_job_details.training_environment.gpu",
        "expected one of ['container_image']",
    )


def test_unknown_key_in_an_array_item() -> None:
    card = full_card()
    card["evaluation_details"][0]["score"] = 1
    assert_invalid(card, "model_card_content.evaluation_details[0].score", "not an allowed property")


def test_type() -> None:
    card = full_card()
    card["training_details"]["training_job_details"]["training_metrics"][0]["value"] = "0.21"
    assert_invalid(
        card,
        "model_card_content.training_details.training_job_details.training_metrics[0].value",
        "'0.21' is not of type 'number'",
    )


def test_section_of_the_wrong_type() -> None:
    assert_invalid({"model_overview": []}, "model_card_content.model_overview", "is not of type 'object'")


def test_required_missing() -> None:
    card = full_card()
    del card["evaluation_details"][0]["name"]
    assert_invalid(card, "model_card_content.evaluation_details[0].name", "'name' is a required property")


def test_required_missing_in_a_later_item() -> None:
    card = full_card()
    card["evaluation_details"].append({"datasets": []})
    assert_invalid(card, "model_card_content.evaluation_details[1].name", "required")


def test_pattern() -> None:
    card = full_card()
    card["evaluation_details"][0]["name"] = ""
    assert_invalid(card, "model_card_content.evaluation_details[0].name", "'' does not match '.{1,63}'")


def test_custom_details_value_and_key_with_a_space() -> None:
    card = full_card()
    card["additional_information"]["custom_details"]["cost center"] = 42
    assert_invalid(
        card,
        "model_card_content.additional_information.custom_details['cost center']",
        "42 is not of type 'string'",
    )


def test_max_items() -> None:
    card = full_card()
    card["evaluation_details"][0]["datasets"] = [f"s3://d/{i}" for i in range(11)]
    assert_invalid(
        card, "model_card_content.evaluation_details[0].datasets", "has 11 items, expected at most 10"
    )


# metric_data items are an anyOf of the four metric kinds: the error comes from the kind the item names


def test_metric_of_a_known_kind_reports_inside_that_kind() -> None:
    metric = {"name": "cm", "type": "matrix", "value": [[1, "two"]]}
    assert_invalid(with_metric(metric), f"{METRIC}.value[0][1]", "'two' is not of type 'number'")


def test_linear_graph_point_needs_two_coordinates() -> None:
    metric = {"name": "roc", "type": "linear_graph", "value": [[0.1, 0.2, 0.3]]}
    assert_invalid(with_metric(metric), f"{METRIC}.value[0]", "has 3 items, expected at most 2")


def test_bar_chart_axis_names_are_an_array() -> None:
    metric = {"name": "fi", "type": "bar_chart", "value": [1.0], "x_axis_name": "feature"}
    assert_invalid(with_metric(metric), f"{METRIC}.x_axis_name", "is not of type 'array'")


def test_simple_string_metric_too_long() -> None:
    metric = {"name": "s", "type": "string", "value": "v" * 64}
    assert_invalid(with_metric(metric), f"{METRIC}.value", "64 characters long, expected at most 63")


def test_unknown_metric_kind_lists_every_kind() -> None:
    metric = {"name": "m", "type": "histogram", "value": [1]}
    assert_invalid(
        with_metric(metric),
        f"{METRIC}.type",
        "'histogram' is not one of ['number', 'string', 'boolean', 'linear_graph', 'bar_chart', 'matrix']",
    )


def test_metric_without_type() -> None:
    assert_invalid(with_metric({"name": "m", "value": 1}), f"{METRIC}.type", "'type' is a required property")


def test_metric_that_is_not_an_object() -> None:
    assert_invalid(with_metric("auc=0.9"), METRIC, "is not of type 'object'")


def test_first_error_by_path_and_a_count_of_the_others() -> None:
    card = full_card()
    card["model_overview"]["model_creator"] = 7
    card["intended_uses"]["risk_rating"] = "Extreme"
    card["business_details"]["owner"] = "x"
    error = assert_invalid(card, "model_card_content.business_details.owner", "(and 2 more errors: ")
    assert "model_card_content.intended_uses.risk_rating" in str(error)
    assert "model_card_content.model_overview.model_creator" in str(error)


def test_custom_root_field() -> None:
    with pytest.raises(MLSValidationError) as info:
        validate_model_card({"intended_uses": {"risk_rating": "?"}}, field="model_card")
    assert info.value.field == "model_card.intended_uses.risk_rating"


# --- input that is not a JSON object --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON: Expecting property name"),
        ("", "is not valid JSON"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"model_overview": {}, "model_overview": {}}', "duplicate key 'model_overview'"),
        ("[1, 2]", "expected a JSON object, got a JSON array"),
        ('"card"', "expected a JSON object, got a JSON string"),
        ("null", "expected a JSON object, got a JSON null"),
        (["model_overview"], "expected a JSON object (a dict or a JSON string), got list"),
        (None, "got NoneType"),
        (b"{}", "got bytes"),
    ],
)
def test_not_a_json_object(content: Any, message: str) -> None:
    assert_invalid(content, "model_card_content", message)


def test_values_that_are_not_json_name_their_path() -> None:
    assert_invalid(
        {"training_details": {"training_observations": float("inf")}},
        "model_card_content.training_details.training_observations",
        "inf is not a JSON number",
    )
    assert_invalid(
        {"business_details": {"line_of_business": {1, 2}}},
        "model_card_content.business_details.line_of_business",
        "set is not a JSON type",
    )
    assert_invalid(
        {"additional_information": {"custom_details": {1: "a"}}},
        "model_card_content.additional_information.custom_details",
        "keys must be strings",
    )


# --- the content size limit -----------------------------------------------------------------------


def card_of_size(size: int, filler: str = "x") -> dict[str, Any]:
    """A valid card whose compact JSON is exactly ``size`` characters: many ``custom_details`` values."""
    card = full_card()
    details = card["additional_information"]["custom_details"]
    index = 0
    while len(model_card_json(card)) < size:
        details[f"note_{index:04d}"] = filler * 1024
        index += 1
    excess = len(model_card_json(card)) - size
    last = f"note_{index - 1:04d}"
    assert excess < 1024
    details[last] = filler * (1024 - excess)
    assert len(model_card_json(card)) == size
    return card


@pytest.mark.parametrize("size", [MODEL_CARD_MAX_CHARS - 1, MODEL_CARD_MAX_CHARS])
def test_card_within_the_limit_passes(size: int) -> None:
    card = card_of_size(size)
    assert validate_model_card(card) == card


def test_card_over_the_limit_fails_with_its_length() -> None:
    assert_invalid(
        card_of_size(MODEL_CARD_MAX_CHARS + 1), "model_card_content", "is 100001 characters", "100000"
    )


def test_limit_counts_the_compact_serialization() -> None:
    card = card_of_size(MODEL_CARD_MAX_CHARS)
    pretty = json.dumps(card, indent=2)
    assert len(pretty) > MODEL_CARD_MAX_CHARS
    assert validate_model_card(pretty) == card  # whitespace in the caller's string does not count


def test_limit_counts_characters_not_escapes() -> None:
    card = card_of_size(MODEL_CARD_MAX_CHARS, filler="가")
    assert len(json.dumps(card, separators=(",", ":"))) > MODEL_CARD_MAX_CHARS  # \uac00 escapes
    assert validate_model_card(card) == card
    assert_invalid(card_of_size(MODEL_CARD_MAX_CHARS + 1, filler="가"), "model_card_content", "100001")


def test_many_evaluation_entries_over_the_limit() -> None:
    entry = {"name": "e", "evaluation_observation": "o" * 2000}
    card = {"evaluation_details": [dict(entry, name=f"eval-{i}") for i in range(60)]}
    size = len(model_card_json(card))
    assert size > MODEL_CARD_MAX_CHARS
    assert_invalid(card, "model_card_content", f"is {size} characters")
    assert validate_model_card({"evaluation_details": card["evaluation_details"][:45]})
