"""The run form's schema of the build flow: a kind picker for the source and the teacher, and errors
that name the field, checked with Prefect's own schema code (what `prefect deploy` sends, and what
the server's form validation answers). The browser test (tests/integration/test_ui_form.py) shows
the same in the real UI."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import ValidationError, build_error_obj, preprocess_schema, validate
from pydantic import BaseModel

from flows.build import build_dataset
from tracemill.problems.config import SourceConfig
from tracemill.teachers.config import TeacherConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return parameter_schema(build_dataset).model_dump()


def _union(schema: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    return schema["definitions"][model]["properties"][field]


def _kinds(member: dict[str, Any]) -> list[str]:
    kind = member["properties"]["kind"]
    return [kind["const"]] if "const" in kind else kind["enum"]


def _ui_pick(value: dict[str, Any], members: list[dict[str, Any]]) -> int:
    """Prefect 3.6's form: the member with most of the value's keys, the first on a tie."""
    best, count = -1, 0
    for index, member in enumerate(members):
        matched = len(set(value) & set(member["properties"]))
        if matched > count:
            best, count = index, matched
    return best


def _models(union: Any) -> list[type[BaseModel]]:
    return list(typing.get_args(typing.get_args(union)[0]))


@pytest.mark.parametrize(("model", "field", "union"), [("BuildConfig", "source", SourceConfig),
                                                       ("SamplingConfig", "teacher", TeacherConfig)])  # fmt: skip
def test_every_kind_has_its_own_button(schema, model, field, union):
    prop = _union(schema, model, field)
    assert "oneOf" not in prop and "discriminator" not in prop  # the shapes the form shows as a JSON box
    members = prop["anyOf"]
    assert all(m["type"] == "object" and next(iter(m["properties"])) == "kind" for m in members)
    models = _models(union)
    assert sorted(k for m in members for k in _kinds(m)) == sorted(m.model_fields["kind"].default for m in models)
    for cls in models:
        kind = cls.model_fields["kind"].default
        value = {name: "x" for name in cls.model_fields}  # every field, as the form fills them in
        assert kind in _kinds(members[_ui_pick(value, members)]), kind
        # Every field of the kind is in the form, under its own name.
        member = next(m for m in members if kind in _kinds(m))
        assert set(member["properties"]) == set(cls.model_fields), kind


def test_the_deployments_open_on_their_own_kind(schema):
    """A deployment's parameters name a few fields only: the form must still open on their kind."""
    deployments = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]
    configs = [d["parameters"]["config"] for d in deployments if "config" in d.get("parameters", {})]
    assert configs
    sources = _union(schema, "BuildConfig", "source")["anyOf"]
    teachers = _union(schema, "SamplingConfig", "teacher")["anyOf"]
    for config in configs:
        assert config["source"]["kind"] in _kinds(sources[_ui_pick(config["source"], sources)])
        teacher = config["sampling"]["teacher"]
        assert teacher["kind"] in _kinds(teachers[_ui_pick(teacher, teachers)])


def test_the_source_starts_on_procedural_clevr(schema):
    assert _union(schema, "BuildConfig", "source")["default"]["kind"] == "clevr_procedural"


def _errors(schema: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What the server's /ui/schemas/validate answers the form."""
    return build_error_obj(validate({"config": config}, preprocess_schema(schema), preprocess=False))


def _at(errors: dict[str, Any], *path: str) -> list[Any]:
    level = errors["errors"]
    for part in path:
        level = next(e["errors"] for e in level if isinstance(e, dict) and e.get("property") == part)
    return level


CONFIG = {
    "name": "form",
    "source": {"kind": "clevr_procedural", "num_scenes": 2, "scenes_per_shard": 1},
    "sampling": {"teacher": {"kind": "vllm", "model": "m"}, "n": 1},
}


def test_errors_name_the_field_and_the_kinds(schema):
    assert _errors(schema, CONFIG) == {"errors": [], "valid": True}
    assert _errors(schema, {**CONFIG, "source": {"kind": "gsm8k", "split": "train"}})["valid"]

    bad = _errors(schema, {**CONFIG, "source": {**CONFIG["source"], "num_scenes": 0}})
    assert _at(bad, "config", "source") == [{"property": "num_scenes", "errors": ["0 is less than the minimum of 1"]}]

    bad = _errors(schema, {**CONFIG, "source": {"kind": "gsm8k", "split": ""}})
    assert _at(bad, "config", "source", "split") == ["'' should be non-empty"]

    bad = _errors(schema, {**CONFIG, "source": {"kind": "gsm9k"}})
    (message,) = _at(bad, "config", "source", "kind")
    assert "'gsm9k' is not one of ['clevr_files', 'clevr_procedural', 'math500', 'gsm8k'" in message

    bad = _errors(schema, {**CONFIG, "sampling": {"teacher": {"kind": "vllm", "model": "m", "max_num_seqs": 0}}})
    assert _at(bad, "config", "sampling", "teacher", "max_num_seqs") == ["0 is less than the minimum of 1"]


def test_a_triggered_run_is_refused_naming_the_field(schema):
    """What the server answers a flow-run trigger of a deployment that enforces its schema (HTTP 409)."""
    assert validate({"config": CONFIG}, schema, raise_on_error=True) == []
    bad = {"config": {**CONFIG, "source": {"kind": "gsm8k", "problems_per_shard": 0}}}
    with pytest.raises(ValidationError, match=r"field 'config\.source\.problems_per_shard'.*minimum of 1"):
        validate(bad, schema, raise_on_error=True)
    # An unknown kind fails every member: the answer names the field and the value, not the kinds.
    with pytest.raises(ValidationError, match=r"field 'config\.source'.*'gsm9k'"):
        validate({"config": {**CONFIG, "source": {"kind": "gsm9k"}}}, schema, raise_on_error=True)
