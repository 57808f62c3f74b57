from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from tools.reference import _models, in_readme, reference
from tracemill.build import BuildConfig, load_build_config
from tracemill.config import load_yaml
from tracemill.problems.config import (
    FileFields,
    GpqaSource,
    Gsm8kSource,
    Math500Source,
    ProblemsConfig,
    SourceConfig,
    load_problems_config,
)

ROOT = Path(__file__).resolve().parents[2]


SOURCES: tuple[type[BaseModel], ...] = get_args(get_args(SourceConfig)[0])


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_complete_build_configs(path):
    config = load_build_config(path)
    assert isinstance(config.source, SOURCES)
    assert config.sampling.teacher.kind in {"vllm", "endpoint"}


def test_benchmark_sources_by_kind(tmp_path):
    path = tmp_path / "source.yaml"
    path.write_text("source:\n  kind: gsm8k\n  path: ./gsm8k/test.jsonl\n  max_rows: 100\n")
    source = load_yaml(path, ProblemsConfig).source
    assert isinstance(source, Gsm8kSource) and (source.config, source.split, source.max_rows) == ("main", "test", 100)
    path.write_text("source:\n  kind: math500\n")
    assert load_yaml(path, ProblemsConfig).source == Math500Source(path="HuggingFaceH4/MATH-500")
    path.write_text("source:\n  kind: gpqa\n  max_rows: 0\n")
    with pytest.raises(ValueError, match=r"source\.gpqa\.max_rows"):
        load_yaml(path, ProblemsConfig)
    assert GpqaSource().config == "gpqa_diamond"
    path.write_text("source:\n  kind: files\n  path: x.jsonl\n")
    with pytest.raises(ValueError, match=r"source\.files\.name\n.*Field required"):
        load_yaml(path, ProblemsConfig)


def test_bad_values_name_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("source:\n  kind: clevr_procedural\n  num_scenes: 0\n")
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml.*source\.clevr_procedural\.num_scenes"):
        load_yaml(path, ProblemsConfig)
    path.write_text("source:\n  kind: clevr_procedural\n  num_scene: 10\n")
    with pytest.raises(ValueError, match=r"num_scene\n.*Extra inputs are not permitted"):
        load_yaml(path, ProblemsConfig)
    path.write_text("source:\n  kind: clevr_procedural\n  min_objects: 6\n  max_objects: 4\n")
    with pytest.raises(ValueError, match=r"min_objects \(6\) is above max_objects \(4\)"):
        load_yaml(path, ProblemsConfig)
    path.write_text("source: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        load_yaml(path, ProblemsConfig)


def test_a_removed_field_stops_the_config_naming_it(tmp_path):
    """filters.custom_prompts is gone: kept prompts are read from the samples, which record them as sent."""
    data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data["filters"]["custom_prompts"] = [{"name": "mine", "text": "{question}"}]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"(?s)old\.yaml.*filters\.custom_prompts\n.*Extra inputs are not permitted"):
        load_build_config(path)


def _all_models(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo += [sub for field in model.model_fields.values() for sub in _models(field.annotation)]
    return seen


def test_every_field_has_a_description():
    models = _all_models(BuildConfig) | {ProblemsConfig, FileFields}
    assert len(models) > 20  # sources, teachers, judge, relabel, filters, export, orchestration…
    for model in models:
        for name, field in model.model_fields.items():
            assert name == "kind" or field.description, f"{model.__name__}.{name}"


def test_numeric_fields_have_bounds():
    for model in _all_models(BuildConfig):
        for name, field in model.model_fields.items():
            if field.annotation in (int, float, int | None, float | None):
                bounds = [m for m in field.metadata if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")]
                assert bounds, f"{model.__name__}.{name} has no bounds"


def test_readme_reference_is_generated_from_the_config_model():
    readme = (ROOT / "README.md").read_text()
    assert in_readme(readme) == reference(BuildConfig), "run `python -m tools.reference README.md`"
    assert "`sampling.teacher` · kind `vllm`" in readme and "`judge` (JudgeConfig)" in readme


def test_the_problems_stage_reads_source_and_store_of_a_build_config(tmp_path):
    build = load_build_config(ROOT / "configs" / "demo.yaml")
    alone = load_problems_config(ROOT / "configs" / "demo.yaml")
    assert (alone.source, alone.store) == (build.source, build.store)
    path = tmp_path / "build.yaml"
    path.write_text("source:\n  kind: gsm8k\n  max_rows: 0\nsampling: {}\n")  # sampling is not its business
    with pytest.raises(ValueError, match=r"(?s)build\.yaml.*source\.gsm8k\.max_rows"):
        load_problems_config(path)
