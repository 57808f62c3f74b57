"""The problems flow with a benchmark source read from a local copy, on a real Prefect API."""

from __future__ import annotations

import json
from pathlib import Path

from flows.problems import synthesize_problems
from tracemill.config import StoreConfig
from tracemill.problems.config import MmluProSource
from tracemill.records import problem_id
from tracemill.store import Store

OPTIONS = [f"{n} apples" for n in range(10)]


def test_mmlu_pro_local_copy_to_a_problems_dataset(prefect_api, tmp_path):
    path = tmp_path / "mmlu_pro" / "test.jsonl"
    path.parent.mkdir()
    rows = [
        {"question_id": i, "question": f"Which count is {i % 10}?", "options": OPTIONS, "answer": "ABCDEFGHIJ"[i % 10],
         "answer_index": i % 10, "cot_content": "", "category": "math" if i % 2 else "other", "src": "made-up"}
        for i in range(25)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = MmluProSource(path=str(path), dedup=False, problems_per_shard=10)
    store = StoreConfig(url=str(tmp_path / "store"))

    state = synthesize_problems(source=source, store=store, return_state=True)
    uri = state.result()
    manifest = json.loads((Path(uri) / "_manifest.json").read_text())
    assert [s["rows"] for s in manifest["shards"]] == [10, 10, 5]
    assert manifest["inputs"] and manifest["inputs"][0].startswith(f"file://{path}@")
    assert manifest["config"]["kind"] == "mmlu_pro"

    table = Store(store.url).dataset("problems", Path(uri).name, "problem").read()
    got = table.to_pylist()
    assert [r["problem_id"] for r in got] == [problem_id("mmlu_pro", str(i)) for i in range(25)]
    assert [r["answer"] for r in got] == [row["answer"] for row in rows]
    assert {(r["source"], r["split"], r["answer_type"], r["prompt_template"]) for r in got} == {
        ("mmlu_pro", "test", "choice", "choice")
    }
    assert got[3]["choices"] == OPTIONS and got[3]["subject"] == "math"

    # Same file, same config: the same dataset; an edited file: a new one.
    assert synthesize_problems(source=source, store=store) == uri
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:20]))
    assert synthesize_problems(source=source, store=store) != uri
