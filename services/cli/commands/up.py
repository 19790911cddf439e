"""`rtml up`: the embedded stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from services.cli.main import UsageError
from services.common.broker import free_port
from services.common.kafka import ShutdownFlag
from services.common.logs import configure_logging
from services.common.settings import Settings, get_settings
from services.common.supervisor import Stack, StackAlreadyRunning
from services.common.topology import SERVICES, ServiceSpec, available_services, feature_layout, feature_processes


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="start the embedded stack in the foreground")
    parser.add_argument(
        "--services",
        default="",
        help=f"comma-separated subset of: {', '.join(s.name for s in SERVICES)} (default: all that exist)",
    )
    parser.add_argument("--no-broker", action="store_true", help="use the broker at RTML_KAFKA_BOOTSTRAP instead")
    parser.add_argument(
        "--feature-layout",
        default="",
        help="run the feature service as several processes, '/' between them, each a comma-separated list of "
        "its stages, e.g. user/user/label/merchant (two user-stage processes want RTML_TOPIC_PARTITIONS=4); "
        "the first uses RTML_FEATURE_PORT, the others free ports (default: one process, every stage)",
    )
    parser.set_defaults(handler=run)


def selected_services(names: str) -> list[ServiceSpec]:
    existing = {s.name: s for s in available_services()}
    if not names:
        return list(existing.values())
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in {s.name for s in SERVICES}:
            raise UsageError(f"--services: unknown service {name!r}")
        if name not in existing:
            raise UsageError(f"--services: service {name!r} is not part of this build yet")
        chosen.append(existing[name])
    return chosen


def with_feature_layout(services: list[ServiceSpec], layout_text: str, settings: Settings) -> list[ServiceSpec]:
    """``services`` with the feature service replaced by the processes of ``--feature-layout``."""
    if not layout_text:
        return services
    if not any(spec.name == "feature" for spec in services):
        raise UsageError("--feature-layout: the feature service is not among --services")
    try:
        layout = feature_layout(layout_text, settings.topic_partitions)
    except ValueError as exc:
        raise UsageError(f"--feature-layout: {exc}") from None
    out = []
    for spec in services:
        if spec.name != "feature":
            out.append(spec)
            continue
        ports = [settings.feature_port, *(free_port(settings.bind_host) for _ in layout[1:])]
        out.extend(feature_processes(spec, layout, ports))
    return out


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not args.no_broker:
        settings = settings.model_copy(update={"kafka_bootstrap": f"{settings.bind_host}:{settings.broker_port}"})
    services = with_feature_layout(selected_services(args.services), args.feature_layout, settings)
    configure_logging(settings, "rtml-up")
    stop = ShutdownFlag().install()
    stack = Stack(settings, services, start_broker=not args.no_broker)
    try:
        stack.start()
    except StackAlreadyRunning as exc:
        print(f"rtml: {exc}")
        return 1
    stack._emit("rtml", "stack is up; Ctrl-C stops every part")
    try:
        stack.run_forever(stop.event)
    finally:
        stack.stop()
    return 0
