import json

import pytest


@pytest.fixture(scope="session")
def demo_build_dir(tmp_path_factory):
    """The folder of the one store that the vLLM builds of test_build_flow's `_config` share: the scores test
    adds its stage to the stages the build test computed, instead of loading the sampling engine again (run
    alone, it computes them itself)."""
    return tmp_path_factory.mktemp("demo-build")


@pytest.fixture
def clevr_files(tmp_path):
    """A tiny CLEVR scenes/questions pair in the released format."""
    obj = {"size": "large", "color": "red", "material": "rubber", "shape": "cube", "rotation": 10.0}
    objects = [
        {**obj, "3d_coords": [-1.0, 0.0, 0.7], "pixel_coords": [100, 150, 10.0]},
        {**obj, "color": "blue", "3d_coords": [1.0, 0.0, 0.7], "pixel_coords": [300, 150, 11.0]},
        {**obj, "shape": "sphere", "3d_coords": [0.0, 2.0, 0.7], "pixel_coords": [200, 100, 12.0]},
    ]
    scene = {
        "image_index": 0,
        "image_filename": "CLEVR_val_000000.png",
        "split": "val",
        "objects": objects,
        "relationships": {"left": [[], [0], []], "right": [[1], [], []], "front": [[], [], []], "behind": [[], [], []]},
        "directions": {},
    }
    program = [
        {"function": "scene", "inputs": [], "value_inputs": []},
        {"function": "filter_color", "inputs": [0], "value_inputs": ["red"]},
        {"function": "count", "inputs": [1], "value_inputs": []},
    ]
    questions = [
        {"image_filename": "CLEVR_val_000000.png", "image_index": 0, "question_index": 0, "question_family_index": 1,
         "question": "How many red things are there?", "answer": "2", "program": program, "split": "val"},
        {"image_filename": "CLEVR_val_000000.png", "image_index": 0, "question_index": 1, "question_family_index": 1,
         "question": "How many cubes are there?", "answer": "2", "split": "val",
         "program": [program[0], {"function": "filter_shape", "inputs": [0], "value_inputs": ["cube"]}, program[2]]},
    ]  # fmt: skip
    scenes_path = tmp_path / "scenes.json"
    questions_path = tmp_path / "questions.json"
    scenes_path.write_text(json.dumps({"info": {}, "scenes": [scene]}))
    questions_path.write_text(json.dumps({"info": {}, "questions": questions}))
    return scenes_path, questions_path
