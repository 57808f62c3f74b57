import pytest

from tracemill.overrides import apply_overrides, parse_override


def test_values_are_read_as_yaml_scalars():
    assert parse_override("sampling.n=8") == (["sampling", "n"], 8)
    assert parse_override("judge.mode=cascade") == (["judge", "mode"], "cascade")
    assert parse_override("filters.correct_only=false") == (["filters", "correct_only"], False)
    assert parse_override("source.max_rows=null") == (["source", "max_rows"], None)
    assert parse_override("export.formats=[sft, weaver]") == (["export", "formats"], ["sft", "weaver"])
    assert parse_override("name=a=b") == (["name"], "a=b")  # only the first '=' separates
    assert parse_override("sampling.prompt=") == (["sampling", "prompt"], "")


@pytest.mark.parametrize("bad", ["sampling.n", "=3", "sampling..n=3", "a.=1"])
def test_malformed_overrides_say_what_is_expected(bad):
    with pytest.raises(ValueError, match="expected dotted.key=value"):
        parse_override(bad)


def test_overrides_set_nested_keys_in_a_copy():
    data = {"sampling": {"n": 4, "teacher": {"kind": "vllm", "model": "m"}}, "name": "x"}
    out = apply_overrides(data, ["sampling.n=16", "sampling.teacher.model=other", "store.url=s3://b/p"])
    assert out == {
        "sampling": {"n": 16, "teacher": {"kind": "vllm", "model": "other"}},
        "name": "x",
        "store": {"url": "s3://b/p"},
    }
    assert data["sampling"]["n"] == 4 and data["sampling"]["teacher"]["model"] == "m"  # the input is untouched


def test_an_override_cannot_descend_into_a_scalar():
    with pytest.raises(ValueError, match=r"name is str, not a mapping"):
        apply_overrides({"name": "x"}, ["name.first=y"])
