"""CreateAutoMLModelOperator, UpdateAutoMLServerHandlerOperator and MigrateBucketsOperator on the local server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls.exceptions import (
    MLSBadRequestError,
    MLSConflictError,
    MLSNotFoundError,
    MLSValidationError,
)
from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    MigrateBucketsOperator,
    UpdateAutoMLServerHandlerOperator,
)

from ._support import record_requests, uniq, writes

if TYPE_CHECKING:
    from pathlib import Path

    from ._support import Mls

pytestmark = pytest.mark.timeout(60)

HANDLER = "def handler(features):\n    return {'score': len(features)}\n"


# ---- CreateAutoMLModelOperator ----------------------------------------------------------------------


@pytest.mark.parametrize("by", ["dataset_name", "dataset_id", "dataset_id string"])
def test_create_automl(mls: Mls, by: str) -> None:
    dataset = mls.create_dataset(uniq("ds"))
    ref = {
        "dataset_name": {"dataset_name": dataset["name"]},
        "dataset_id": {"dataset_id": dataset["id"]},
        "dataset_id string": {"dataset_id": str(dataset["id"])},
    }[by]
    name = uniq("auto")
    model = CreateAutoMLModelOperator(
        task_id="t", name=name, version="v1", description="desc", **ref
    ).execute({})
    stored = mls.model(model["id"])
    assert model["id"] == stored["id"]
    assert (stored["model_type"], stored["name"], stored["version"], stored["description"]) == (
        "automl",
        name,
        "v1",
        "desc",
    )
    assert stored["dataset_id"] == dataset["id"]
    assert model["status"] == "TRAINING"  # training started; the sensor waits for it


def test_create_automl_if_exists(mls: Mls) -> None:
    dataset = mls.create_dataset(uniq("ds"))
    name = uniq("auto-dup")
    first = CreateAutoMLModelOperator(task_id="t", name=name, version="v1", dataset_id=dataset["id"]).execute(
        {}
    )
    again = CreateAutoMLModelOperator(task_id="t", name=name, version="v1", dataset_id=dataset["id"])
    with pytest.raises(AirflowFailException) as err:
        again.execute({})
    assert isinstance(err.value.__cause__, MLSConflictError)
    other = mls.create_dataset(uniq("ds"))
    skipped = CreateAutoMLModelOperator(
        task_id="t", name=name, version="v1", description="changed", dataset_id=other["id"], if_exists="skip"
    ).execute({})
    assert skipped["id"] == first["id"]
    stored = mls.model(first["id"])
    assert (stored["dataset_id"], stored["description"]) == (dataset["id"], "")
    assert len(mls.models(name)) == 1


def test_create_automl_skip_when_a_manual_model_holds_the_pair(mls: Mls) -> None:
    manual = mls.manual(uniq("taken"))
    dataset = mls.create_dataset(uniq("ds"))
    op = CreateAutoMLModelOperator(
        task_id="t", name=manual["name"], version="v1", dataset_id=dataset["id"], if_exists="skip"
    )
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert mls.model(manual["id"]) == manual
    assert isinstance(err.value.__cause__, MLSConflictError), err.value.__cause__


def test_create_automl_unknown_dataset(mls: Mls) -> None:
    name = uniq("auto-nods")
    by_name = CreateAutoMLModelOperator(task_id="t", name=name, version="v1", dataset_name=uniq("no-ds"))
    with pytest.raises(AirflowFailException, match="dataset") as err:
        by_name.execute({})
    assert isinstance(err.value.__cause__, MLSNotFoundError)
    by_id = CreateAutoMLModelOperator(task_id="t", name=name, version="v1", dataset_id=987654321)
    with pytest.raises(AirflowFailException, match="dataset_id") as err:
        by_id.execute({})
    assert isinstance(err.value.__cause__, (MLSBadRequestError, MLSNotFoundError))
    assert mls.models(name) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dataset_id": 1, "dataset_name": "x"}, "dataset_id"),
        ({}, "dataset_id"),
        ({"dataset_id": "one"}, "dataset_id"),
        ({"dataset_id": 1, "if_exists": "update"}, "if_exists"),
    ],
)
def test_create_automl_bad_input_sends_nothing(mls: Mls, kwargs: dict, field: str) -> None:
    name = uniq("auto-bad")
    op = CreateAutoMLModelOperator(task_id="t", name=name, version="v1", **kwargs)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match=field) as err:
        op.execute({})
    cause = err.value.__cause__
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert calls == []
    assert mls.models(name) == []


# ---- UpdateAutoMLServerHandlerOperator --------------------------------------------------------------


def test_handler_from_string(mls: Mls) -> None:
    model = mls.automl(uniq("h"), trained=False)
    assert mls.handler(model["id"]) is None
    result = UpdateAutoMLServerHandlerOperator(task_id="t", model_id=model["id"], handler=HANDLER).execute({})
    assert result == {"model_id": model["id"], "source": "handler", "chars": len(HANDLER), "replaced": True}
    assert mls.handler(model["id"]) == HANDLER


def test_handler_from_path(mls: Mls, tmp_path: Path) -> None:
    name = uniq("hp")
    model = mls.automl(name, trained=False)
    path = tmp_path / "handler.py"
    path.write_text(HANDLER, encoding="utf-8")
    op = UpdateAutoMLServerHandlerOperator(task_id="t", name=name, version="v1", handler_path=str(path))
    assert op.execute({}) == {
        "model_id": model["id"],
        "source": str(path),
        "chars": len(HANDLER),
        "replaced": True,
    }
    assert mls.handler(model["id"]) == HANDLER


def test_handler_copied_from_another_model(mls: Mls) -> None:
    source = mls.automl(uniq("hsrc"), trained=False)
    target = mls.automl(uniq("hdst"), trained=False)
    mls.set_handler(source["id"], HANDLER)
    op = UpdateAutoMLServerHandlerOperator(
        task_id="t", model_id=str(target["id"]), handler_from_model_id=source
    )
    assert op.execute({}) == {
        "model_id": target["id"],
        "source": f"model {source['id']}",
        "chars": len(HANDLER),
        "replaced": True,
    }
    assert mls.handler(target["id"]) == HANDLER
    assert mls.handler(source["id"]) == HANDLER


def test_handler_only_if_missing_keeps_the_models_own(mls: Mls) -> None:
    """The SDK's upgrade: copy the old model's handler only when the new one has none."""
    source = mls.automl(uniq("hsrc"), trained=False)
    mls.set_handler(source["id"], HANDLER)
    has_one = mls.automl(uniq("hown"), trained=False)
    own = "def handler(request, model):\n    return {'items': []}\n"
    mls.set_handler(has_one["id"], own)
    op = UpdateAutoMLServerHandlerOperator(
        task_id="t", model_id=has_one["id"], handler_from_model_id=source["id"], only_if_missing=True
    )
    calls = record_requests(op)
    assert op.execute({}) == {
        "model_id": has_one["id"],
        "source": "kept",
        "chars": len(own),
        "replaced": False,
    }
    assert writes(calls) == [] and mls.handler(has_one["id"]) == own
    has_none = mls.automl(uniq("hnew"), trained=False)
    op = UpdateAutoMLServerHandlerOperator(
        task_id="t", model_id=has_none["id"], handler_from_model_id=source["id"], only_if_missing="true"
    )
    assert op.execute({})["replaced"] is True and mls.handler(has_none["id"]) == HANDLER


def test_handler_copy_from_model_without_handler(mls: Mls) -> None:
    source = mls.automl(uniq("hnone"), trained=False)
    target = mls.automl(uniq("hdst"), trained=False)
    mls.set_handler(target["id"], HANDLER)
    op = UpdateAutoMLServerHandlerOperator(
        task_id="t", model_id=target["id"], handler_from_model_id=source["id"]
    )
    with pytest.raises(AirflowFailException, match="handler_from_model_id"):
        op.execute({})
    assert mls.handler(target["id"]) == HANDLER


@pytest.mark.parametrize("via", ["handler", "handler_path"])
def test_handler_bad_python_sends_nothing(mls: Mls, tmp_path: Path, via: str) -> None:
    model = mls.automl(uniq("hbad"), trained=False)
    mls.set_handler(model["id"], HANDLER)
    bad = "def handler(features):\n    return {'score':\n"
    path = tmp_path / "bad.py"
    path.write_text(bad, encoding="utf-8")
    source = {"handler": bad} if via == "handler" else {"handler_path": str(path)}
    op = UpdateAutoMLServerHandlerOperator(task_id="t", model_id=model["id"], **source)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="handler") as err:
        op.execute({})
    cause = err.value.__cause__
    assert isinstance(cause, MLSValidationError) and cause.field == "handler"
    assert writes(calls) == []
    assert mls.handler(model["id"]) == HANDLER


@pytest.mark.parametrize(
    ("sources", "field"),
    [
        ({"handler": HANDLER, "handler_path": "/tmp/h.py"}, "handler"),
        ({"handler": HANDLER, "handler_from_model_id": 1}, "handler"),
        ({}, "handler"),
        ({"handler": "   "}, "handler"),
        ({"handler_path": "/nonexistent/handler.py"}, "handler_path"),
        ({"handler_from_model_id": "abc"}, "handler_from_model_id"),
    ],
)
def test_handler_bad_sources(mls: Mls, sources: dict, field: str) -> None:
    model = mls.automl(uniq("hsrcs"), trained=False)
    op = UpdateAutoMLServerHandlerOperator(task_id="t", model_id=model["id"], **sources)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match=field) as err:
        op.execute({})
    cause = err.value.__cause__
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert writes(calls) == []
    assert mls.handler(model["id"]) is None


def test_handler_on_a_manual_model_or_unknown_model(mls: Mls) -> None:
    manual = mls.manual(uniq("hman"))
    with pytest.raises(AirflowFailException, match="model_type"):
        UpdateAutoMLServerHandlerOperator(task_id="t", model_id=manual["id"], handler=HANDLER).execute({})
    with pytest.raises(AirflowFailException) as err:
        UpdateAutoMLServerHandlerOperator(
            task_id="t", name=manual["name"], version="v1", handler=HANDLER
        ).execute({})
    assert isinstance(err.value.__cause__, MLSNotFoundError)  # (name, version) looks for an AutoML model
    with pytest.raises(AirflowFailException) as err:
        UpdateAutoMLServerHandlerOperator(task_id="t", model_id=987654321, handler=HANDLER).execute({})
    assert isinstance(err.value.__cause__, MLSNotFoundError)


# ---- MigrateBucketsOperator -------------------------------------------------------------------------


def served_by(mls: Mls, experiment_id: int) -> dict[str, int | None]:
    return {b["name"]: b["prediction"]["ml_model"] for b in mls.buckets(experiment_id)}


def setup_buckets(mls: Mls) -> tuple[dict, dict, dict, list[dict]]:
    """Model A serves buckets b1 and b2 of a new experiment; model B (v2) serves none; b3 is served by C."""
    name = uniq("mig")
    a, b, c = mls.manual(name, "v1"), mls.manual(name, "v2"), mls.manual(uniq("other"))
    exp = mls.experiment(uniq("exp"))
    buckets = [mls.bucket(exp["id"], "b1", a), mls.bucket(exp["id"], "b2", a), mls.bucket(exp["id"], "b3", c)]
    return exp, a, b, buckets


@pytest.mark.parametrize("by", ["id", "string id and model dict", "name and version"])
def test_migrate_buckets(mls: Mls, by: str) -> None:
    exp, a, b, buckets = setup_buckets(mls)
    refs = {
        "id": {"from_model_id": a["id"], "to_model_id": b["id"]},
        "string id and model dict": {"from_model_id": str(a["id"]), "to_model_id": b},
        "name and version": {
            "from_name": a["name"],
            "from_version": "v1",
            "to_name": b["name"],
            "to_version": "v2",
        },
    }[by]
    summary = MigrateBucketsOperator(task_id="t", **refs).execute({})
    assert summary["from_model_id"] == a["id"]
    assert summary["to_model_id"] == b["id"]
    assert summary["prediction_type"] == "online"
    assert summary["buckets"] == [
        {"id": buckets[0]["id"], "name": "b1", "ml_model": b["id"]},
        {"id": buckets[1]["id"], "name": "b2", "ml_model": b["id"]},
    ]
    assert served_by(mls, exp["id"]) == {
        "b1": b["id"],
        "b2": b["id"],
        "b3": buckets[2]["prediction"]["ml_model"],
    }
    assert mls.model(a["id"])["status"] == "NOT_IN_USE" and mls.model(b["id"])["status"] == "IN_USE"
    # A re-run moves nothing and says so
    again = MigrateBucketsOperator(task_id="t", **refs).execute({})
    assert again["buckets"] == []


def test_migrate_to_automl_model_by_name(mls: Mls) -> None:
    exp, a, _, _ = setup_buckets(mls)
    auto = mls.automl(uniq("mig-auto"))
    summary = MigrateBucketsOperator(
        task_id="t", from_model_id=a["id"], to_name=auto["name"], to_version="v1"
    ).execute({})
    assert (summary["to_model_id"], summary["prediction_type"]) == (auto["id"], "automl")
    assert [(x["name"], x["ml_model"]) for x in summary["buckets"]] == [
        ("b1", auto["id"]),
        ("b2", auto["id"]),
    ]
    types = {
        b["name"]: (b["prediction"]["request"]["type"], b["prediction"]["ml_model"])
        for b in mls.buckets(exp["id"])
    }
    assert types["b1"] == types["b2"] == ("automl", auto["id"])


def test_migrate_to_static(mls: Mls) -> None:
    exp, a, _, _ = setup_buckets(mls)
    summary = MigrateBucketsOperator(
        task_id="t", from_model_id=a["id"], prediction_type="static", static_value={"items": []}
    ).execute({})
    assert (summary["to_model_id"], summary["prediction_type"]) == (None, "static")
    assert [(x["name"], x["ml_model"]) for x in summary["buckets"]] == [("b1", None), ("b2", None)]
    statics = [b for b in mls.buckets(exp["id"]) if b["prediction"]["request"]["type"] == "static"]
    assert sorted(b["name"] for b in statics) == ["b1", "b2"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"from_model_id": 1, "from_name": "x", "from_version": "v1", "to_model_id": 2}, "from_model_id"),
        ({"to_model_id": 2}, "from_model_id"),
        ({"from_model_id": 1, "to_name": "x"}, "to_version"),
        ({"from_model_id": 1, "to_model_id": 2, "prediction_type": "bogus"}, "prediction_type"),
        ({"from_model_id": 1, "prediction_type": "static"}, "static_value"),
    ],
)
def test_migrate_bad_input_sends_nothing(mls: Mls, kwargs: dict, field: str) -> None:
    op = MigrateBucketsOperator(task_id="t", **kwargs)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match=field) as err:
        op.execute({})
    cause = err.value.__cause__
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert writes(calls) == []


def test_migrate_unknown_models(mls: Mls) -> None:
    exp, a, _, _ = setup_buckets(mls)
    before = served_by(mls, exp["id"])
    for kwargs in (
        {"from_model_id": a["id"], "to_model_id": 987654321},
        {"from_model_id": 987654321, "to_model_id": a["id"]},
        {"from_name": uniq("ghost"), "from_version": "v1", "to_model_id": a["id"]},
    ):
        with pytest.raises(AirflowFailException) as err:
            MigrateBucketsOperator(task_id="t", **kwargs).execute({})
        assert isinstance(err.value.__cause__, MLSNotFoundError), kwargs
    assert served_by(mls, exp["id"]) == before
