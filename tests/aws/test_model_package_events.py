"""ModelPackageApprovedEventTrigger against a real moto server: one event per newly approved version."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mls.triggers.model_package_events import STATE_KEY, ModelPackageApprovedEventTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

ARTIFACT = "s3://models/churn/{n}/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
CLASSPATH = "airflow_provider_mls.triggers.model_package_events.ModelPackageApprovedEventTrigger"


class StateStore:
    """What the Airflow 3.3 triggerer injects as ``asset_state_store`` (one watched asset): aget/aset.

    It also lets a test wait until the trigger has saved its baseline, so approvals made after that
    are "new" without any sleep.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.saved = asyncio.Event()

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))  # JSON, as the real store keeps it
        self.saved.set()


def register(
    registry: SageMakerModelRegistryHook, group: str, n: int, status: str = "PendingManualApproval"
) -> str:
    registry.ensure_group(group)
    described = registry.register_version(
        group, model_data_url=ARTIFACT.format(n=n), image=IMAGE, approval_status=status
    )
    return str(described["ModelPackageArn"])


def make(moto_url: str, group: str, store: StateStore | None) -> ModelPackageApprovedEventTrigger:
    trig = ModelPackageApprovedEventTrigger(
        group, aws_conn_id=None, endpoint_url=moto_url, poke_interval=0.01
    )
    if store is not None:
        trig.asset_state_store = store
    return trig


async def next_event(events: AsyncIterator[Any]) -> dict[str, Any]:
    event = await asyncio.wait_for(events.__anext__(), 60)
    payload: dict[str, Any] = event.payload
    assert json.loads(json.dumps(payload)) == payload  # the triggerer stores it
    return payload


def approve(registry: SageMakerModelRegistryHook, arn: str, why: str) -> Callable[[], Any]:
    return lambda: registry.update_version(arn, approval_status="Approved", approval_description=why)


def test_fires_once_per_newly_approved_version_oldest_first(
    registry: SageMakerModelRegistryHook, group_name: str, moto_url: str
) -> None:
    before = register(registry, group_name, 1, status="Approved")
    pending = register(registry, group_name, 2)
    rejected = register(registry, group_name, 3)
    later = register(registry, group_name, 4)
    store = StateStore()
    store.values[STATE_KEY] = [before]  # what the watch saved when it started: v1 was approved then
    registry.update_version(rejected, approval_status="Rejected")
    approve(registry, later, "v4 passed review")()
    approve(registry, pending, "v2 passed review")()

    async def scenario() -> list[dict[str, Any]]:
        events = make(moto_url, group_name, store).run()
        got = [await next_event(events), await next_event(events)]
        await events.aclose()
        return got

    got = asyncio.run(scenario())
    # One listing saw both: oldest first, each once; neither v1 (reported before) nor the rejected v3.
    assert [p["arn"] for p in got] == [pending, later]
    assert got[0] == {
        "group": group_name,
        "arn": pending,
        "version": 2,
        "approval_description": "v2 passed review",
        "model_data_url": ARTIFACT.format(n=2),
    }
    assert sorted(store.values[STATE_KEY]) == sorted([before, pending, later])


def test_the_first_watch_takes_the_approved_versions_as_its_baseline(
    registry: SageMakerModelRegistryHook, group_name: str, moto_url: str
) -> None:
    before = register(registry, group_name, 1, status="Approved")
    fresh = register(registry, group_name, 2)

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        store = StateStore()
        events = make(moto_url, group_name, store).run()
        first = asyncio.ensure_future(next_event(events))
        await asyncio.wait_for(store.saved.wait(), 60)  # the baseline is saved
        baseline = list(store.values[STATE_KEY])
        await asyncio.to_thread(approve(registry, fresh, "ok"))
        payload = await first
        await events.aclose()
        return baseline, payload

    baseline, payload = asyncio.run(scenario())
    assert baseline == [before]
    assert payload["arn"] == fresh


def test_a_restart_neither_repeats_nor_loses_an_approval(
    registry: SageMakerModelRegistryHook, group_name: str, moto_url: str
) -> None:
    v1 = register(registry, group_name, 1)
    v2 = register(registry, group_name, 2)
    store = StateStore()

    async def first_run() -> dict[str, Any]:
        events = make(moto_url, group_name, store).run()
        first = asyncio.ensure_future(next_event(events))
        await asyncio.wait_for(store.saved.wait(), 60)
        await asyncio.to_thread(approve(registry, v1, "ok"))
        payload = await first
        await events.aclose()  # the triggerer stops
        return payload

    assert asyncio.run(first_run())["arn"] == v1
    registry.update_version(v2, approval_status="Approved")  # while no triggerer runs

    async def second_run() -> dict[str, Any]:
        store.saved = asyncio.Event()
        events = make(moto_url, group_name, store).run()
        payload = await next_event(events)
        await events.aclose()
        return payload

    assert asyncio.run(second_run())["arn"] == v2  # not v1 again


def test_without_a_state_store_the_first_listing_is_the_baseline(
    registry: SageMakerModelRegistryHook, group_name: str, moto_url: str
) -> None:
    already = register(registry, group_name, 1, status="Approved")
    fresh = register(registry, group_name, 2)
    listed = asyncio.Event()

    async def scenario() -> dict[str, Any]:
        trig = make(moto_url, group_name, None)
        original = trig.log.info

        def info(msg: str, *args: Any) -> None:  # "Watching ..." is logged once the baseline is taken
            original(msg, *args)
            if msg.startswith("Watching"):
                listed.set()

        trig.log.info = info  # type: ignore[method-assign]
        events = trig.run()
        first = asyncio.ensure_future(next_event(events))
        await asyncio.wait_for(listed.wait(), 60)
        await asyncio.to_thread(approve(registry, fresh, "ok"))
        payload = await first
        await events.aclose()
        return payload

    payload = asyncio.run(scenario())
    assert payload["arn"] == fresh and payload["arn"] != already


def test_serializes_to_plain_kwargs_and_rebuilds() -> None:
    trig = ModelPackageApprovedEventTrigger("churn-models", region_name="eu-west-1", poke_interval=30)
    classpath, kwargs = trig.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert ModelPackageApprovedEventTrigger(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"model_package_group": ""}, "model_package_group"), ({"poke_interval": 0}, "poke_interval")],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    kwargs = {"model_package_group": "churn-models", **kwargs}
    with pytest.raises(ValueError, match=field):
        ModelPackageApprovedEventTrigger(**kwargs)


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="event-driven scheduling is Airflow 3")
def test_usable_in_an_asset_watcher_of_a_serialized_dag() -> None:
    from airflow.sdk import DAG, Asset, AssetWatcher
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.triggers.base import BaseEventTrigger

    trig = ModelPackageApprovedEventTrigger("churn-models")
    assert isinstance(trig, BaseEventTrigger)
    asset = Asset("sagemaker-approvals-churn", watchers=[AssetWatcher(name="churn_approved", trigger=trig)])
    with DAG("deploy_on_approval", schedule=[asset]) as dag:
        pass
    data = DagSerialization.to_dict(dag)
    assert CLASSPATH in json.dumps(data)
