from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from tracemill.config import (
    FileFields,
    GpqaSource,
    Gsm8kSource,
    Math500Source,
    ProblemsConfig,
    SourceConfig,
    load_yaml,
)

ROOT = Path(__file__).resolve().parents[2]


SOURCES: tuple[type[BaseModel], ...] = get_args(get_args(SourceConfig)[0])


@pytest.mark.parametrize("name", ["demo.yaml", "clevr_files.yaml", "math500.yaml", "gsm8k.yaml", "gpqa.yaml"])
def test_example_configs_load(name):
    config = load_yaml(ROOT / "configs" / name)
    assert isinstance(config, ProblemsConfig)
    assert isinstance(config.source, SOURCES)


def test_benchmark_sources_by_kind(tmp_path):
    path = tmp_path / "source.yaml"
    path.write_text("source:\n  kind: gsm8k\n  path: ./gsm8k/test.jsonl\n  max_rows: 100\n")
    source = load_yaml(path).source
    assert isinstance(source, Gsm8kSource) and (source.config, source.split, source.max_rows) == ("main", "test", 100)
    path.write_text("source:\n  kind: math500\n")
    assert load_yaml(path).source == Math500Source(path="HuggingFaceH4/MATH-500")
    path.write_text("source:\n  kind: gpqa\n  max_rows: 0\n")
    with pytest.raises(ValueError, match=r"source\.gpqa\.max_rows"):
        load_yaml(path)
    assert GpqaSource().config == "gpqa_diamond"
    path.write_text("source:\n  kind: files\n  path: x.jsonl\n")
    with pytest.raises(ValueError, match=r"source\.files\.name\n.*Field required"):
        load_yaml(path)


def test_bad_values_name_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("source:\n  kind: clevr_procedural\n  num_scenes: 0\n")
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml.*source\.clevr_procedural\.num_scenes"):
        load_yaml(path)
    path.write_text("source:\n  kind: clevr_procedural\n  num_scene: 10\n")
    with pytest.raises(ValueError, match=r"num_scene\n.*Extra inputs are not permitted"):
        load_yaml(path)
    path.write_text("source:\n  kind: clevr_procedural\n  min_objects: 6\n  max_objects: 4\n")
    with pytest.raises(ValueError, match=r"min_objects \(6\) is above max_objects \(4\)"):
        load_yaml(path)
    path.write_text("source: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        load_yaml(path)


def test_every_field_has_a_description():
    for model in (ProblemsConfig, FileFields, *SOURCES):
        for name, field in model.model_fields.items():
            assert name == "kind" or field.description, f"{model.__name__}.{name}"
