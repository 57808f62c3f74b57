"""The Custom run form of `build-dataset` in Prefect's real UI, driven by headless Chromium.

A real `prefect server start` with its UI, a `cpu` process pool and worker, a deployment of
`build-dataset` made with `prefect deploy`, and an endpoint teacher (a TeacherEndpoint block)
against the local OpenAI-compatible server of tests/fake_openai.py. In the browser, as a user: the
form opens on procedural CLEVR, the source's kind picker switches to GSM8K and shows its fields, a
bad value is refused on Submit with the field named, and a small CLEVR build filled in the form runs
on the worker to Completed. With TRACEMILL_UPDATE_SCREENSHOT=1 it refreshes docs/ui-form.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Locator, Page, Response, expect, sync_playwright

from blocks.teacher_endpoint import TeacherEndpoint
from tests.fake_openai import FakeOpenAI
from tests.integration.prefect_server import ROOT, api_client, start_prefect_server, wait_for_final_state

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (make test installs it); Playwright only drives it
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [pytest.mark.browser, pytest.mark.prefect]

SCREENSHOT = ROOT / "docs" / "ui-form.png"
TEACHER_BLOCK = "ui-form-teacher"
# The form's fields: a label span inside the property's block.
PROPERTY = "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')][1]"


def _deployment_file(path: Path, store_url: str) -> Path:
    """A deployment of build-dataset as in deployments/prefect.yaml, with defaults too big to run here."""
    config = {
        "name": "ui-form-clevr",
        "source": {"kind": "clevr_procedural", "num_scenes": 20000, "scenes_per_shard": 500, "questions_per_scene": 1},
        "store": {"url": store_url},
        "sampling": {"teacher": {"kind": "endpoint", "block": TEACHER_BLOCK, "max_retries": 0}, "n": 2},
        "filters": {"require_reasoning": False, "correct_only": False},
    }
    project = {
        "name": "tracemill-ui-form",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $TRACEMILL_HOME }}"}}],
        "deployments": [
            {
                "name": "ui-form",
                "entrypoint": "flows/build.py:build_dataset",
                "work_pool": {"name": "cpu"},
                "parameters": {"config": config},
            }
        ],
    }
    path.write_text(yaml.safe_dump(project))
    return path


def _field(scope: Page | Locator, label: str) -> Locator:
    """The form property labelled ``label`` (the form adds " (Optional)" to fields with a default)."""
    span = scope.locator("span.schema-form-property__label").filter(
        has_text=re.compile(rf"^{re.escape(label)}( \(Optional\))?$")
    )
    return span.first.locator(PROPERTY)


def _open_form(page: Page, url: str) -> Locator:
    """Open the Custom run form; returns the source's property."""
    page.goto(url)
    source = _field(page, "Source")
    expect(source).to_be_visible()
    skip = page.get_by_role("button", name="Skip")  # the "Join the Prefect Community" dialog, first visit only
    if skip.count():
        skip.click()
    return source


def test_custom_run_form_picks_kinds_names_bad_fields_and_runs_a_build(tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `apt-get install chromium` (infra/system-packages.sh)"
    settings = {"PREFECT_UI_ENABLED": "true", "PREFECT_UI_API_URL": "/api"}
    with FakeOpenAI() as teacher, start_prefect_server(tmp_path, settings) as server:
        server.cli(
            "work-pool",
            "create",
            "cpu",
            "--type",
            "process",
            "--base-job-template",
            "infra/work-pools/cpu-process.json",
        )
        project = _deployment_file(tmp_path / "prefect.yaml", str(tmp_path / "store"))
        server.cli("deploy", "--prefect-file", str(project), "--name", "ui-form")
        with api_client(server) as client:
            TeacherEndpoint(base_url=teacher.url, model="fake-teacher").save(TEACHER_BLOCK)
            deployment = client.read_deployment_by_name("build-dataset/ui-form")
        form_url = f"{server.api_url.removesuffix('/api')}/deployments/deployment/{deployment.id}/run"

        errors: list[Response] = []
        failure_shot = tmp_path / "failure.png"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1440, "height": 2000},
            )
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.on("response", lambda r: errors.append(r) if "/api/" in r.url and r.status >= 400 else None)
            try:
                # Opens on the deployment's source: procedural CLEVR, with its fields.
                source = _open_form(page, form_url)
                expect(source.get_by_role("button", name="clevr_procedural")).to_have_attribute("aria-selected", "true")
                expect(_field(source, "Num Scenes").locator("input")).to_have_value("20000")

                # The picker switches to GSM8K (the `math500 · gsm8k` button, then its Kind list).
                source.get_by_role("button", name="math500 · gsm8k").click()
                _field(source, "Kind").locator(".p-select-button__control").press("ArrowDown")
                page.locator(".p-select-option", has_text=re.compile(r"^gsm8k$")).click()
                expect(_field(source, "Kind")).to_contain_text("gsm8k")
                for label in ("Path", "Split", "Max Problems", "On Bad Row", "Problems Per Shard"):
                    expect(_field(source, label)).to_be_visible()
                expect(_field(source, "Num Scenes")).to_have_count(0)
                if os.environ.get("TRACEMILL_UPDATE_SCREENSHOT") == "1":
                    page.screenshot(path=str(SCREENSHOT))

                # A bad value: the form lets it through, the server refuses the run and names the field.
                _field(source, "Split").locator("input, textarea").first.fill("train")
                _field(source, "Problems Per Shard").locator("input").fill("0")
                page.get_by_role("button", name="Submit").click()
                expect(
                    page.get_by_text("Validation failed for field 'config.source.problems_per_shard'").first
                ).to_be_visible()
                assert [(r.url.rsplit("/", 1)[-1], r.status) for r in errors] == [("create_flow_run", 409)]
                with api_client(server) as client:
                    assert client.read_flow_runs() == [], "the refused Submit made a flow run"

                # A small procedural CLEVR build, filled in a fresh form. On SQLite a busy server may answer
                # 503 ("database is locked", retry): Submit again, as a user would.
                source = _open_form(page, form_url)
                _field(source, "Num Scenes").locator("input").fill("4")
                _field(source, "Scenes Per Shard").locator("input").fill("2")
                for _ in range(3):
                    with page.expect_response(lambda r: r.url.endswith("/create_flow_run")) as answer:
                        page.get_by_role("button", name="Submit").click()
                    if answer.value.status != 503:
                        break
                assert answer.value.status == 201, answer.value.text()
                run_id = answer.value.json()["id"]
            except Exception as exc:
                page.screenshot(path=str(failure_shot), full_page=True)
                answers = [f"{r.request.method} {r.url}: {r.status}" for r in errors]
                pytest.fail(f"{server.services.logs()}\n{answers}\nscreenshot of the page: {failure_shot}\n{exc}")
            finally:
                browser.close()

        # The worker starts only now (the run waits Scheduled): its polling is SQLite's busiest writer.
        server.worker("cpu", "ui-form-cpu")
        with api_client(server) as client:
            run = wait_for_final_state(client, run_id, seconds=240)
            assert run.state is not None and run.state.is_completed(), (run.state, server.services.logs())
            source_params: dict[str, Any] = run.parameters["config"]["source"]
            assert (source_params["kind"], source_params["num_scenes"], source_params["scenes_per_shard"]) == (
                "clevr_procedural",
                4,
                2,
            )
        assert teacher.received, "the build never asked the teacher"
