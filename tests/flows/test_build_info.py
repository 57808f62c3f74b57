"""The rows a source skipped or repaired travel from the problems manifest to the funnel and the card."""

from __future__ import annotations

from pathlib import Path

from flows.build import build_info
from tracemill.build import load_build_config
from tracemill.config import StoreConfig
from tracemill.filtering import funnel
from tracemill.problems import stage as problems
from tracemill.problems.config import FileSource
from tracemill.stage import commit
from tracemill.store import Store

DEMO = Path(__file__).parents[2] / "configs" / "demo.yaml"


def test_build_info_carries_the_source_rows_of_the_problems_manifest(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("question,answer\nQ1,1\nQ2,2\nQ1,1\nQ3,\n")
    source = FileSource(path=str(path), name="mine", answer_type="integer")
    config = load_build_config(DEMO).model_copy(
        update={"source": source, "store": StoreConfig(url=str(tmp_path / "s"))}
    )
    store = Store(config.store.url)
    stage = problems.problems_stage(source, store)
    dataset = stage.dataset(store)
    dataset.write_shard(0, problems.build_shard(source, 0, store))
    commit(stage, [dataset], 1, metadata={"rows": problems.row_report(source, store)})

    info = build_info(config, dataset.uri, "samples/0000", {})
    assert info["source_rows"] == dataset.manifest()["metadata"]["rows"]
    assert [
        (line["action"], line["reason"], line["rows"]) for line in funnel.source_rows_table(info["source_rows"])
    ] == [
        ("skipped", "duplicate question (de-duplication)", 1),
        ("skipped", "field 'answer' is null", 1),
    ]
