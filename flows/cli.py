"""``tracemill``: run a build from a YAML config, or the offline demo.

    tracemill run CONFIG.yaml [--set dotted.key=value …] [--force]
    tracemill verify CONFIG.yaml [--set dotted.key=value …] [--repair]
    tracemill plan CONFIG.yaml [--set dotted.key=value …]
    tracemill demo [--force]

Without ``PREFECT_API_URL`` a build runs on a temporary local Prefect API; with it, the runs show in
that server's UI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flows.entry import read_source, run_cli
from tracemill import lifetime
from tracemill.build import BuildConfig, load_build_config

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def run(config: BuildConfig, force: bool) -> dict[str, str]:
    from flows.build import build_dataset
    from flows.preflight import check_build

    check_build(config, force)  # before a temporary Prefect server starts: a missing model fails in seconds
    read_source(config.source, config.store)  # a data error ends the command with one clean line
    start_temporary_server()
    locations = build_dataset(config=config, force=force)
    funnel = locations.get("funnel")
    if funnel:
        print_funnel(funnel)
    print("\nwhere the build wrote its output:")
    for stage, where in locations.items():
        print(f"  {stage:>16}: {where}")
    return locations


def start_temporary_server() -> None:
    """Without ``PREFECT_API_URL``, start Prefect's temporary server now, as a process that dies with this one.

    Prefect would start the same server on first use as a plain child, which a ``kill -9`` of the build
    leaves running with its port held. Prefect's later calls find this one running and use it.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return
    server = SubprocessASGIServer()  # the instance Prefect uses: the checks above may have started it
    if server.server_process is not None:
        lifetime.reap_with_us([server.server_process.pid])
        return
    with lifetime.reaped_with_us():
        server.start()


def print_funnel(path: str) -> None:
    """The funnel file the export stage wrote: counts per source, and rows through every filter."""
    import fsspec

    with fsspec.open(path, "r") as f:
        tables = json.load(f)
    for title, rows in tables.items():
        if not rows:
            continue
        names = list(rows[0])
        widths = [max(len(name), *(len(str(row.get(name, ""))) for row in rows)) for name in names]
        print(f"\nfunnel, {title}:")
        print("  " + "  ".join(name.rjust(width) for name, width in zip(names, widths, strict=True)))
        for row in rows:
            cells = (str(row.get(name, "")).rjust(width) for name, width in zip(names, widths, strict=True))
            print("  " + "  ".join(cells))


def demo(force: bool) -> dict[str, str]:
    """The offline demo: make the tiny local model if it is missing, then build configs/demo.yaml."""
    config = load_build_config(DEMO_CONFIG)
    teacher = config.sampling.teacher
    model = Path(getattr(teacher, "model", ""))
    if teacher.kind == "vllm" and not (model / "config.json").exists():
        from tools.tiny_model import make_tiny_model

        print(f"making the tiny demo model in {model} …")
        make_tiny_model(model)
    return run(config, force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracemill", description="Build R1-style reasoning datasets on Prefect.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a build from a YAML config")
    run_parser.add_argument("config", help="build config (YAML), e.g. configs/math500.yaml")
    run_parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set sampling.n=8 (repeatable)",
    )
    run_parser.add_argument("--force", action="store_true", help="recompute every shard of every stage")
    verify_parser = commands.add_parser("verify", help="check a build's datasets and exports against their manifests")
    verify_parser.add_argument("config", help="build config (YAML) of the build to check")
    verify_parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    verify_parser.add_argument("--repair", action="store_true", help="delete damaged files and rebuild exactly those")
    plan_parser = commands.add_parser("plan", help="print the build's calls, tokens and cost per stage; runs nothing")
    plan_parser.add_argument("config", help="build config (YAML) to plan")
    plan_parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    demo_parser = commands.add_parser("demo", help="run the offline demo build (tiny local model, CPU)")
    demo_parser.add_argument("--force", action="store_true", help="recompute every shard of every stage")
    args = parser.parse_args(argv)
    status = 0

    def command() -> None:
        nonlocal status
        if args.command == "demo":
            demo(args.force)
        elif args.command == "plan":
            from flows.plan import build_plan, print_plan

            print_plan(build_plan(load_build_config(args.config, args.overrides)))
        elif args.command == "verify":
            from flows.verify import verify

            status = verify(load_build_config(args.config, args.overrides), args.repair, lambda c: run(c, force=False))
        else:
            run(load_build_config(args.config, args.overrides), args.force)

    return run_cli("tracemill", command) or status


if __name__ == "__main__":
    sys.exit(main())
