"""Every entry point ends a configuration or data error with one clean line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.cli import main as tracemill_main

pytestmark = pytest.mark.prefect  # `tracemill run` and `python -m flows.problems` start Prefect's temporary server

ROOT = Path(__file__).parents[2]
MMLU_PRO = ROOT / "tests" / "tracemill" / "problems" / "fixtures" / "mmlu_pro_test.jsonl"
ERROR = (
    "mmlu_pro ({path}): row 2 (question_id 3983): answer letter and answer_index disagree "
    "(the letter is kept): answer 'C', answer_index 3"
)


def write_config(tmp_path: Path) -> Path:
    """A build config whose MMLU-Pro source fails on its bad row, and a teacher folder the preflight accepts."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    config = {
        "name": "entry",
        "source": {"kind": "mmlu_pro", "path": str(MMLU_PRO), "on_bad_row": "fail"},
        "store": {"url": str(tmp_path / "store")},
        "sampling": {"teacher": {"kind": "vllm", "model": str(model)}, "prompt": "choice"},
    }
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tracemill_run_prints_the_data_error(tmp_path, capsys):
    assert tracemill_main(["run", str(write_config(tmp_path))]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "tracemill: " + ERROR.format(path=MMLU_PRO)


def test_problems_stage_prints_the_same_error(tmp_path):
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    args = [sys.executable, "-m", "flows.problems", "--config", str(write_config(tmp_path))]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "flows.problems: " + ERROR.format(path=MMLU_PRO)
    # A config error too: the file and the field, one line.
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"source": {"kind": "mmlu_pro", "on_bad_row": "sometimes"}}))
    done = subprocess.run([*args[:-1], str(bad)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"flows.problems: {bad}: 1 validation error") and "on_bad_row" in done.stderr
