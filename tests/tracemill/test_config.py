from pathlib import Path

import pytest

from tracemill.config import ClevrFilesSource, ClevrProceduralSource, ProblemsConfig, load_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo.yaml", "clevr_files.yaml"])
def test_example_configs_load(name):
    config = load_yaml(ROOT / "configs" / name)
    assert isinstance(config, ProblemsConfig)
    assert isinstance(config.source, ClevrProceduralSource | ClevrFilesSource)


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
    for model in (ProblemsConfig, ClevrProceduralSource, ClevrFilesSource):
        for name, field in model.model_fields.items():
            assert name == "kind" or field.description, f"{model.__name__}.{name}"
