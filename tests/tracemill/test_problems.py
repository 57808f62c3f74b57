"""The problems stage builds shards for every source kind, benchmarks and user files included."""

from __future__ import annotations

import json

from tracemill.problems import stage as problems
from tracemill.problems.config import ClevrFilesSource, ClevrProceduralSource, FileSource, Gsm8kSource
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


def _clevr_files(tmp_path, scenes: int) -> tuple[str, list[str]]:
    """A CLEVR scenes file of ``scenes`` one-object scenes, and two questions files (one question each)."""
    obj = {"size": "large", "color": "red", "material": "rubber", "shape": "cube", "rotation": 1.0,
           "3d_coords": [0.0, 0.0, 0.7], "pixel_coords": [1, 2, 3.0]}  # fmt: skip
    names = [f"CLEVR_val_{i:06d}.png" for i in range(scenes)]
    data = {"scenes": [{"image_index": i, "image_filename": n, "objects": [obj]} for i, n in enumerate(names)]}
    (tmp_path / "scenes.json").write_text(json.dumps(data))
    program = [{"function": "scene", "inputs": [], "value_inputs": []}, {"function": "count", "inputs": [0]}]
    paths = []
    for family, image in (("and_mat", names[0]), ("or_mat", "CLEVR_val_999999.png")):
        q = {"question_index": 0, "image_filename": image, "question": "How many?", "program": program, "answer": 1}
        (tmp_path / f"{family}.json").write_text(json.dumps({"questions": [q]}))
        paths.append(str(tmp_path / f"{family}.json"))
    return str(tmp_path / "scenes.json"), paths


def test_clevr_files_max_problems_count_all_and_skipped_questions(tmp_path):
    scenes, questions = _clevr_files(tmp_path, 40)
    store = Store(str(tmp_path / "store"))
    source = ClevrFilesSource(scenes_path=scenes, questions_path=questions)
    assert len(problems.input_fingerprints(source, store)) == 3  # the scenes and both questions files
    assert problems.build_shard(source, 0, store).num_rows == 41  # 40 count-all questions and one kept
    # The question on an image the scenes file lacks is skipped and counted, for the manifest.
    assert problems.row_report(source, store)["skipped"] == {"image not in the scenes file": 1}

    only_questions = source.model_copy(update={"count_all": False})
    assert problems.build_shard(only_questions, 0, store).column("question").to_pylist() == ["How many?"]

    trial = source.model_copy(update={"max_problems": 10, "sample_seed": 1})
    picked = problems.build_shard(trial, 0, store).column("problem_id").to_pylist()
    assert len(picked) == 10 and picked == problems.build_shard(trial, 0, store).column("problem_id").to_pylist()
    every = problems.build_shard(source, 0, store).column("problem_id").to_pylist()
    assert [every.index(p) for p in picked] == sorted(every.index(p) for p in picked)  # source order
    other = problems.build_shard(trial.model_copy(update={"sample_seed": 2}), 0, store)
    assert set(other.column("problem_id").to_pylist()) != set(picked)
    assert problems.stage_fingerprint(trial, store) != problems.stage_fingerprint(source, store)


def test_files_source_max_problems_and_row_report(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("question,answer\n" + "".join(f"Q{i},{i}\n" for i in range(30)) + "Q0,0\nQempty,\n")
    source = FileSource(path=str(path), name="mine", answer_type="integer", max_problems=7)
    store = Store(str(tmp_path / "store"))
    assert problems.num_shards(source, store) == 1 and problems.build_shard(source, 0, store).num_rows == 7
    # The empty cell makes pandas read the column as floats; 4.0 is still the integer 4.
    assert all(a.isdigit() for a in problems.build_shard(source, 0, store).column("answer").to_pylist())
    report = problems.row_report(source, store)
    assert report["skipped"] == {"duplicate question (de-duplication)": 1, "field 'answer' is null": 1}
    assert report["examples"]["skipped: field 'answer' is null"].endswith("mine.csv): row 31")
    assert problems.row_report(ClevrProceduralSource(num_scenes=1), store)["skipped"] == {}
