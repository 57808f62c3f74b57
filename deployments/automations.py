"""The example automation: notify when a dataset build fails or crashes.

``python deployments/automations.py --notify slack-webhook/tracemill-alerts`` creates (or replaces)
the automation ``tracemill: build failed``: any flow run of ``build-dataset`` entering Failed or
Crashed sends a message through the named notification block (Slack, Teams, email, a custom
webhook: any block made in the UI under Blocks → Notifications). A file for
``prefect automation create --from-file`` would have to carry the block's id, which differs on every
server; this script looks the block up by name instead.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound

NAME = "tracemill: build failed"
FLOW = "build-dataset"

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


def install(notify: str, flow: str = FLOW) -> Automation:
    """Replace the automation of the same name, so running this again updates it."""
    block = Block.load(notify)
    with contextlib.suppress(ObjectNotFound, ValueError):
        Automation.read(name=NAME).delete()
    return failed_build_automation(str(block._block_document_id), flow).create()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Create the automation that notifies on a failed build.")
    parser.add_argument("--notify", required=True, help="notification block as TYPE-SLUG/NAME, e.g. slack-webhook/ops")
    parser.add_argument("--flow", default=FLOW, help="flow name to watch (default: %(default)s)")
    args = parser.parse_args(argv)
    automation = install(args.notify, args.flow)
    print(f"automation {automation.name!r} ({automation.id}) notifies through {args.notify}")


if __name__ == "__main__":
    main()
