"""The problems stage builds shards for every source kind, benchmarks and user files included."""

from __future__ import annotations

import json

from tracemill import problems
from tracemill.config import ClevrProceduralSource, FileSource, Gsm8kSource
from tracemill.records import PROBLEM
from tracemill.store import Store


def test_benchmark_source_is_sliced_into_shards(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps({"question": f"{i} + 1?", "answer": f"#### {i + 1}"}) + "\n" for i in range(7)))
    source = Gsm8kSource(path=str(path), problems_per_shard=3)
    store = Store(str(tmp_path / "store"))
    assert problems.num_shards(source, store) == 3
    shards = [problems.build_shard(source, i, store) for i in range(3)]
    assert [t.num_rows for t in shards] == [3, 3, 1] and all(t.schema.equals(PROBLEM) for t in shards)
    assert [a for t in shards for a in t.column("answer").to_pylist()] == [str(i + 1) for i in range(7)]

    # The fingerprint follows the file's content, and the config.
    before = problems.stage_fingerprint(source, store)
    assert problems.stage_fingerprint(source, store) == before
    assert problems.stage_fingerprint(source.model_copy(update={"max_rows": 5}), store) != before
    path.write_text(path.read_text() + json.dumps({"question": "8 + 1?", "answer": "#### 9"}) + "\n")
    assert problems.stage_fingerprint(source, store) != before
    assert problems.num_shards(source, store) == 3 and problems.build_shard(source, 2, store).num_rows == 2


def test_hub_source_fingerprint_is_name_revision_config_split(tmp_path):
    store = Store(str(tmp_path))
    assert problems.input_fingerprints(Gsm8kSource(revision="v1"), store) == ["hf:openai/gsm8k@v1/main/test"]
    assert problems.stage_fingerprint(Gsm8kSource(revision="v1"), store) != problems.stage_fingerprint(
        Gsm8kSource(revision="v2"), store
    )


def test_every_source_names_its_prompt_template(tmp_path):
    clevr = problems.build_shard(ClevrProceduralSource(num_scenes=1), 0, Store(str(tmp_path)))
    assert set(clevr.column("prompt_template").to_pylist()) == {"clevr_v2"}
    path = tmp_path / "mine.csv"
    path.write_text("question,answer\nQ,A\n")
    table = problems.build_shard(FileSource(path=str(path), name="mine", answer_type="text"), 0, Store(str(tmp_path)))
    assert table.column("prompt_template").to_pylist() == ["math_boxed"]
