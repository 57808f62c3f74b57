import json
from collections.abc import Iterator
from typing import Any

import pytest
import s3fs

from tests.integration.prefect_server import PrefectServer, start_prefect_server


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` with default settings, once per module that asks for it."""
    with start_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: str, cpu_engine: dict[str, Any]) -> Iterator[Any]:
    """One offline vLLM engine on the tiny model for every test that drives one in this process: a load costs
    ~30-40 s here. Its context is 2048 tokens, which the LLM judge's prompt (with its examples) needs."""
    from tracemill.teachers.offline import VllmTeacher

    engine = VllmTeacher(tiny_model, seed=0, **{**cpu_engine, "max_model_len": 2048})
    yield engine
    engine.close()


@pytest.fixture
def clevr_files_s3(s3_server):
    """A tiny CLEVR scenes/questions pair uploaded to the S3 server; returns their s3:// URLs."""
    obj = {"size": "small", "color": "green", "material": "metal", "shape": "cylinder", "rotation": 42.0}
    scene = {
        "image_index": 0,
        "image_filename": "CLEVR_train_000001.png",
        "split": "train",
        "objects": [
            {**obj, "3d_coords": [0.5, 0.5, 0.35], "pixel_coords": [250, 160, 11.5]},
            {**obj, "color": "gray", "3d_coords": [-2.0, 1.0, 0.35], "pixel_coords": [150, 120, 12.5]},
        ],
        "relationships": {"left": [[1], []], "right": [[], [0]], "front": [[], []], "behind": [[], []]},
    }
    question = {
        "image_filename": "CLEVR_train_000001.png",
        "question_index": 0,
        "question": "How many green cylinders are there?",
        "answer": 1,
        "program": [
            {"type": "scene", "inputs": [], "side_inputs": []},
            {"type": "filter_color", "inputs": [0], "side_inputs": ["green"]},
            {"type": "filter_shape", "inputs": [1], "side_inputs": ["cylinder"]},
            {"type": "count", "inputs": [2], "side_inputs": []},
        ],
    }
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    prefix = f"{s3_server.bucket}/inputs"
    fs.pipe_file(f"{prefix}/scenes.json", json.dumps({"info": {}, "scenes": [scene]}).encode())
    fs.pipe_file(f"{prefix}/questions.json", json.dumps({"info": {}, "questions": [question]}).encode())
    return f"s3://{prefix}/scenes.json", f"s3://{prefix}/questions.json"
