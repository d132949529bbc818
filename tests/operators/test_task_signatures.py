"""Every public task, found by walking the package: explicit signatures, ``:param`` lines, dynamic task mapping.

Airflow's ``.partial()``/``.expand()``/``.expand_kwargs()`` accept only arguments named in an
``__init__`` of the class's MRO (``validate_mapping_kwargs``); so does a reader. Each template
field of each public task is mapped on its own, then all of them at once, on the running Airflow
(the tests run on 3.3 and 2.11), and the unmapped task must hold the mapped value.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, BaseOperator

import airflow_provider_mls.operators
import airflow_provider_mls.sensors
from airflow_provider_mls.operators import approval

pytestmark = pytest.mark.timeout(120)


def public_tasks() -> list[type]:
    """Every class in ``__all__`` of every operator and sensor module of the package, once: by the module
    that defines it (``operators.mls`` and ``sensors.mls`` re-export theirs)."""
    found: dict[str, type] = {}
    for package in (airflow_provider_mls.operators, airflow_provider_mls.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name in getattr(module, "__all__", []):
                obj = getattr(module, name)
                if isinstance(obj, type) and issubclass(obj, BaseOperator):
                    found[f"{obj.__module__}.{name}"] = obj
    return [found[key] for key in sorted(found)]


TASKS = public_tasks()


def own_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword-only arguments of the class's own ``__init__`` (not inherited, not ``**kwargs``)."""
    assert "__init__" in vars(cls), f"{cls.__name__} does not define its own __init__"
    params = inspect.signature(vars(cls)["__init__"]).parameters
    return {name: p for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def required(cls: type, skip: str | None = None) -> dict[str, Any]:
    return {
        name: f"required-{name}"
        for name, p in own_arguments(cls).items()
        if p.default is inspect.Parameter.empty and name != skip
    }


def test_the_public_tasks_are_found() -> None:
    names = {cls.__name__ for cls in TASKS}
    # The approval tasks are Airflow's human-in-the-loop tasks: Airflow 3.1+ only.
    assert len(TASKS) == 20 + (len(approval.TASKS) if approval.HITL_AVAILABLE else 0), sorted(names)
    assert (set(approval.TASKS) <= names) is approval.HITL_AVAILABLE
    assert {"CreateManualModelOperator", "OnlinePredictionReadySensor", "ModelPackageApprovedSensor"} <= names


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.__name__)
def test_every_argument_is_named_and_documented(cls: type) -> None:
    params = inspect.signature(vars(cls)["__init__"]).parameters
    positional = [
        n
        for n, p in params.items()
        if n != "self"
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    assert positional == [], f"{cls.__name__}: arguments must be keyword-only"
    args = own_arguments(cls)
    documented = set(re.findall(r":param (\w+):", inspect.getdoc(cls) or ""))
    assert set(args) - documented == set(), f"{cls.__name__} has no :param line for {set(args) - documented}"
    assert documented - set(args) == set(), f"{cls.__name__} documents unknown {documented - set(args)}"
    # Every template field is an argument of the class itself: mappable, visible, documented.
    assert set(cls.template_fields) <= set(args), set(cls.template_fields) - set(args)
    assert len(set(cls.template_fields)) == len(cls.template_fields)


def test_at_most_two_package_classes_under_a_public_task() -> None:
    for cls in TASKS:
        ours = [k for k in cls.__mro__[1:] if k.__module__.startswith("airflow_provider_mls")]
        assert len(ours) <= 2, f"{cls.__name__}: {[k.__name__ for k in ours]}"
        # no mixins: every package class in the MRO is itself an Airflow operator
        assert all(issubclass(k, BaseOperator) for k in ours), cls.__name__


def _dag(name: str) -> DAG:
    return DAG(dag_id=f"mapping_{name}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.__name__)
def test_every_template_field_maps(cls: type) -> None:
    with _dag(cls.__name__):
        for field in cls.template_fields:
            values = [f"{field}-a", f"{field}-b"]
            mapped = cls.partial(task_id=f"expand_{field}", **required(cls, skip=field)).expand(
                **{field: values}
            )
            op = mapped.unmap({field: values[1]})
            assert isinstance(op, cls)
            assert getattr(op, field) == values[1], field


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.__name__)
def test_all_template_fields_map_at_once_with_expand_kwargs(cls: type) -> None:
    kwargs = {field: f"{field}-value" for field in cls.template_fields}
    with _dag(cls.__name__):
        fixed = {k: v for k, v in required(cls).items() if k not in kwargs}
        mapped = cls.partial(task_id="expand_kwargs", **fixed).expand_kwargs([kwargs, kwargs])
        op = mapped.unmap(kwargs)
    assert {field: getattr(op, field) for field in kwargs} == kwargs


# ---- docs/tasks.md: the argument reference, generated from the docstrings ----------------------------

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"


def render_reference() -> str:
    """``docs/tasks.md``: every public task with its summary line, template fields and ``:param`` lines."""
    lines = [
        "# Task reference",
        "",
        "Generated from the docstrings by `python tests/operators/test_task_signatures.py`",
        "(`tests/operators/test_task_signatures.py` fails when it is out of date). Every argument is",
        "keyword-only; every template field can be mapped with `.partial()`/`.expand()`/`.expand_kwargs()`.",
        "Airflow's own arguments (`task_id`, `retries`, and a sensor's `poke_interval`, `timeout`,",
        "`mode`, `soft_fail`, ...) are not repeated here.",
        "",
    ]
    for cls in TASKS:
        doc = inspect.getdoc(cls) or ""
        params = re.findall(r"^:param (\w+): (.+(?:\n(?!:param )\S.*|\n {4}.+)*)", doc, re.MULTILINE)
        lines += [
            f"## `{cls.__name__}`",
            "",
            f"`{cls.__module__}`: {doc.splitlines()[0]}",
            "",
            "| argument | template field | |",
            "|---|---|---|",
        ]
        for name, text in params:
            flat = " ".join(text.split()).replace("|", "\\|")
            lines.append(f"| `{name}` | {'yes' if name in cls.template_fields else ''} | {flat} |")
        lines.append("")
    return "\n".join(lines)


def _without_sections(text: str, names: tuple[str, ...]) -> str:
    """The reference without the sections of these tasks (those the running Airflow does not have)."""
    for name in names:
        text = re.sub(rf"## `{name}`\n.*?(?=\n## |\Z)", "", text, flags=re.DOTALL)
        text = text.replace("\n\n\n", "\n\n")
    return text


def test_the_task_reference_is_up_to_date() -> None:
    expected = REFERENCE.read_text(encoding="utf-8")
    if not approval.HITL_AVAILABLE:  # docs/tasks.md documents them; this Airflow has none of them
        expected = _without_sections(expected, approval.TASKS)
    assert expected == render_reference(), (
        "docs/tasks.md is out of date: run `python tests/operators/test_task_signatures.py`"
    )


if __name__ == "__main__":
    REFERENCE.write_text(render_reference(), encoding="utf-8")
    print(f"wrote {REFERENCE}")
