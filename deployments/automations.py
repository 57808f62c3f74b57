"""The automations shipped with the deployments: crash silent flow runs, notify on failed builds.

``python deployments/automations.py`` creates (or replaces) ``tracemill: crash silent runs``: a flow
run whose heartbeats stop (its process or machine died, and no worker saw it) is marked Crashed
``--crash-after`` seconds after its last heartbeat, so it frees its work pool's concurrency slot
instead of staying Running. The pools' job templates (infra/work-pools/) make flow runs send a
heartbeat every 30 s (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``).

With ``--notify slack-webhook/tracemill-alerts`` it also creates ``tracemill: build failed``: any
flow run of ``build-dataset`` entering Failed or Crashed sends a message through the named
notification block (Slack, Teams, email, a custom webhook: any block made in the UI under Blocks →
Notifications). A file for ``prefect automation create --from-file`` would have to carry the block's
id, which differs on every server; this script looks the block up by name instead.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from datetime import timedelta

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.core import Block
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.exceptions import ObjectNotFound

NAME = "tracemill: build failed"
FLOW = "build-dataset"
CRASH_NAME = "tracemill: crash silent runs"
CRASH_AFTER_S = 120  # four heartbeats of the pools' 30 s: a busy run is late by seconds, never by minutes
FINAL_EVENTS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}

SUBJECT = "tracemill build {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = """Build `{{ flow_run.name }}` of deployment `{{ deployment.name }}` ended {{ flow_run.state.name }}:
{{ flow_run.state.message }}

Finished shards are kept: fix the cause and rerun it from {{ flow_run|ui_url }}"""


def failed_build_automation(block_document_id: str, flow: str = FLOW) -> Automation:
    """Fire once per flow run of ``flow`` that enters Failed or Crashed."""
    return Automation(
        name=NAME,
        description=f"Notify when a {flow} flow run fails or crashes.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": flow},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def crash_silent_runs_automation(after_s: int = CRASH_AFTER_S) -> Automation:
    """Mark a flow run Crashed when neither a heartbeat nor a final state follows a heartbeat within ``after_s``.

    Prefect's own recipe for runs whose process died unseen ("zombie" runs): a proactive trigger per
    flow run, opened by each heartbeat.
    """
    return Automation(
        name=CRASH_NAME,
        description=f"Mark a flow run Crashed when it sends no heartbeat for {after_s} s.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *FINAL_EVENTS},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {after_s} s: the flow run's process is gone",
            )
        ],
    )


def replace(automation: Automation) -> Automation:
    """Create ``automation``, deleting any of the same name first, so running this again updates it."""
    with contextlib.suppress(ObjectNotFound, ValueError):
        Automation.read(name=automation.name).delete()
    return automation.create()


def install(notify: str, flow: str = FLOW) -> Automation:
    block = Block.load(notify)
    return replace(failed_build_automation(str(block._block_document_id), flow))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Create the automations that crash silent runs and notify.")
    parser.add_argument(
        "--crash-after",
        type=int,
        default=CRASH_AFTER_S,
        metavar="SECONDS",
        help="mark a flow run Crashed this long after its last heartbeat (default: %(default)s)",
    )
    parser.add_argument("--notify", help="notification block as TYPE-SLUG/NAME, e.g. slack-webhook/ops")
    parser.add_argument("--flow", default=FLOW, help="flow name to watch (default: %(default)s)")
    args = parser.parse_args(argv)
    crash = replace(crash_silent_runs_automation(args.crash_after))
    print(f"automation {crash.name!r} ({crash.id}) crashes runs silent for {args.crash_after} s")
    if args.notify:
        automation = install(args.notify, args.flow)
        print(f"automation {automation.name!r} ({automation.id}) notifies through {args.notify}")


if __name__ == "__main__":
    main()
