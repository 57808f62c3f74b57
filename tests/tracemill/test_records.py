import pyarrow as pa
import pytest

from tracemill.records import PROBLEM, RELABEL, SAMPLE, VERDICT, RecordError, check_schema, problem_id, to_table


def _problem(**overrides):
    row = {
        "problem_id": "p1",
        "source": "clevr",
        "split": "train",
        "question": "How many cubes are there?",
        "answer": "3",
        "answer_type": "integer",
    }
    row.update(overrides)
    return row


def test_to_table_fills_optional_fields_with_null():
    table = to_table([_problem(), _problem(problem_id="p2", choices=["a", "b"])], PROBLEM)
    assert table.schema.equals(PROBLEM)
    assert table.column("description").to_pylist() == [None, None]
    assert table.column("choices").to_pylist() == [None, ["a", "b"]]


def test_to_table_names_row_and_field():
    with pytest.raises(RecordError, match=r"shard 3: row 1 is missing required field 'answer'"):
        to_table([_problem(), _problem(answer=None)], PROBLEM, what="shard 3")
    with pytest.raises(RecordError, match=r"row 0 has unknown field\(s\) \['colour'\]"):
        to_table([_problem(colour="red")], PROBLEM)
    with pytest.raises(RecordError, match=r"row 2 field 'choices'"):
        to_table([_problem(), _problem(), _problem(choices="A")], PROBLEM)


def test_schemas_share_their_fields():
    assert VERDICT.names[: len(SAMPLE.names)] == SAMPLE.names
    assert RELABEL.names[: len(PROBLEM.names)] == PROBLEM.names


def test_check_schema_describes_differences():
    assert check_schema(PROBLEM, PROBLEM) is None
    changed = PROBLEM.set(PROBLEM.get_field_index("answer"), pa.field("answer", pa.int64(), nullable=False))
    assert "field 'answer' is int64, expected string" in check_schema(changed, PROBLEM)
    assert "missing fields ['extra']" in check_schema(PROBLEM.remove(PROBLEM.get_field_index("extra")), PROBLEM)
    assert "unexpected fields ['x']" in check_schema(PROBLEM.append(pa.field("x", pa.int8())), PROBLEM)


def test_problem_id_is_stable_and_distinct():
    assert problem_id("clevr", "img.png#3") == problem_id("clevr", "img.png#3")
    assert problem_id("clevr", "img.png#3") != problem_id("clevr", "img.png#4")
    assert problem_id("a", "bc") != problem_id("ab", "c")
