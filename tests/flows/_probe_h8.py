import os
import pytest
from tests.flows import test_shared_limits as sl, test_concurrent_builds as cb
from tests import fake_openai
from tests.fake_openai import prompt_of

@pytest.fixture
def spy(monkeypatch):
    seen = []
    real = fake_openai.worst_excess
    def wrapped(*a):
        v = real(*a); seen.append(v); print("WORST EXCESS", v, [ (round(min(r.start for r in a[0] if prompt_of(r.body).startswith(k)),1), round(max(r.start for r in a[0] if prompt_of(r.body).startswith(k)),1)) for k in ("run-a", "run-b") ] if "run-a" in str(a[0][0].body) or "run-b" in str(a[0][0].body) else "", "n", len(a[0]), "span", max(r.start for r in a[0]) - min(r.start for r in a[0])); return v
    monkeypatch.setattr(sl, "worst_excess", wrapped)
    return seen

def test_shared(prefect_api, tmp_path, spy):
    sl.test_two_runs_sharing_a_block_stay_within_its_requests_per_minute(prefect_api, tmp_path)

def test_unshared(prefect_api, tmp_path, spy, monkeypatch):
    real = sl.TeacherEndpoint
    monkeypatch.setattr(sl, "TeacherEndpoint", lambda **kw: real(**{**kw, "shared_limits": False}))
    with pytest.raises(AssertionError):
        sl.test_two_runs_sharing_a_block_stay_within_its_requests_per_minute(prefect_api, tmp_path)

def test_tpm(prefect_api, spy):
    sl.test_two_teachers_on_shared_limits_stay_within_its_tokens_per_minute(prefect_api)

def test_builds(prefect_api, tmp_path):
    cb.test_two_builds_of_one_config_at_once_sample_each_shard_once(prefect_api, tmp_path)

def test_builds_without_lock(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setenv("H8_NO_LOCK", "1")
    monkeypatch.setenv("PYTHONPATH", "/tmp/h8/nolock")
    with pytest.raises(AssertionError) as e:
        cb.test_two_builds_of_one_config_at_once_sample_each_shard_once(prefect_api, tmp_path)
    print("WITHOUT LOCK:", str(e.value)[:300])
