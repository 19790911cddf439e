"""`rtml demo`: the whole loop end to end on the embedded stack, with progress and a final summary."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from services.cli.args import non_negative_int, positive_float, positive_int
from services.cli.main import UsageError
from services.common.settings import get_settings
from services.demo.config import DemoConfig

if TYPE_CHECKING:  # the orchestrator imports the whole stack: loaded only when a demo runs
    from services.demo.orchestrator import Demo, DemoResult

# What --fast changes (tests, CI): shorter training; the stream and the post-swap window are the default's.
FAST = {"mlp_max_epochs": 8}


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="the whole loop end to end on the embedded stack")
    parser.add_argument("--events", type=positive_int, help="transactions in the simulated stream (default 26000)")
    parser.add_argument("--history", type=positive_int, help="transactions recorded before the first model (10000)")
    parser.add_argument("--drift-at", type=positive_int, help="transaction at which fraud patterns change (13000)")
    parser.add_argument("--no-drift", action="store_true", help="inject no drift: checks that nothing false-alarms")
    parser.add_argument("--rate", type=positive_float, help="events/s of live traffic (400)")
    parser.add_argument("--seed", type=non_negative_int, default=7)
    parser.add_argument("--users", type=positive_int, help="simulated users (800)")
    parser.add_argument(
        "--fast", action="store_true", help="shorter training: the MLP stops after 8 epochs (tests, CI)"
    )
    parser.add_argument("--data-dir", type=Path, help="where the demo keeps its data (default: $RTML_DATA_DIR/demo)")
    parser.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> DemoConfig:
    values: dict[str, Any] = dict(FAST) if args.fast else {}
    for flag in ("events", "history", "drift_at", "rate", "users"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    if args.no_drift:
        if args.drift_at is not None:
            raise UsageError("--no-drift and --drift-at exclude each other")
        values["drift_at"] = None
    data_dir = args.data_dir or get_settings().data_dir / "demo"
    config = DemoConfig(data_dir=data_dir, seed=args.seed, **values)
    try:
        config.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return config


def _progress_table(demo: Demo) -> Table:
    table = Table(title="rtml demo", expand=False)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for stage in demo.stages.values():
        mark = f"[green]done[/] {stage.seconds:.0f}s" if stage.done and stage.seconds is not None else "…"
        table.add_row(stage.name, mark, stage.detail)
    t = demo.traffic
    table.add_row(
        "traffic",
        f"{t.transactions:,} txns",
        f"{t.requests_ok:,} scored, {t.requests_failed} failed, answering {t.last_version or '-'}",
    )
    quality = demo.status.get("quality") or {}
    if quality:
        table.add_row(
            "monitor",
            f"{demo.status.get('monitor_requests', 0)} requests",
            f"labelled {quality.get('labelled')}, frauds {quality.get('positives')}, "
            f"recall {quality.get('recall')}, PR-AUC {quality.get('pr_auc')}",
        )
    return table


def summary_table(result: DemoResult) -> Table:
    table = Table(title="rtml demo: summary")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    t = result.traffic
    table.add_row("events ingested (feature service)", f"{result.events_ingested:,}")
    table.add_row("dead-lettered events", f"{result.dlq:,}")
    table.add_row("transactions / labels sent live", f"{t.transactions:,} / {t.labels:,}")
    table.add_row("scoring requests served / failed", f"{t.requests_ok:,} / {t.requests_failed:,}")
    table.add_row("traffic held for the monitor to catch up", f"{t.held_s:.0f} s")
    table.add_row("answers by model version", ", ".join(f"{v}: {n:,}" for v, n in sorted(t.versions.items())))
    for model in result.models:
        metrics = ", ".join(f"{k} {model.metrics[k]:.3f}" for k in ("pr_auc", "roc_auc") if k in model.metrics)
        table.add_row(f"model {model.version} ({model.kind})", f"{model.stage.value}; {metrics}")
    table.add_row("champions in order", " → ".join(result.champions) or "-")
    table.add_row("retraining requests from the monitor", str(result.monitor_requests))
    if result.drift_detected_after_s is not None:
        table.add_row("drift detected after", f"{result.drift_detected_after_s:.0f} s")
    if result.drift_to_champion_s is not None:
        table.add_row("drift → new champion", f"{result.drift_to_champion_s:.0f} s")
    for q in result.quality:
        table.add_row(
            f"post-drift quality {q.version}",
            f"{q.rows:,} rows, {q.frauds} frauds, PR-AUC {_fmt(q.pr_auc)}, recall {_fmt(q.recall)}",
        )
    swap = result.after_swap
    if swap is not None:
        table.add_row(
            "after the swap, identical requests",
            f"{swap.rows:,} rows, {swap.frauds} frauds: new {swap.new.version} PR-AUC {_fmt(swap.new.pr_auc)} "
            f"recall {_fmt(swap.new.recall)}; old {swap.old.version} PR-AUC {_fmt(swap.old.pr_auc)} "
            f"recall {_fmt(swap.old.recall)}",
        )
        if swap.gain_ci is not None:
            table.add_row("PR-AUC gain, 95 % paired bootstrap", f"{swap.gain_ci[0]:+.3f} .. {swap.gain_ci[1]:+.3f}")
    for kind, path in result.report_paths.items():
        table.add_row(f"report ({kind})", path)
    for stage in result.stages:
        table.add_row(f"stage: {stage.name}", "ok" if stage.done else "[red]did not happen[/]")
    return table


def _fmt(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def summary_json(result: DemoResult, error: str) -> dict[str, Any]:
    """The summary in a form scripts and tests read."""
    t = result.traffic
    return {
        "ok": result.ok and not error,
        "error": error,
        "stages": {s.name: s.done for s in result.stages},
        "events_ingested": result.events_ingested,
        "dlq": result.dlq,
        "live_transactions": t.transactions,
        "live_labels": t.labels,
        "requests_ok": t.requests_ok,
        "requests_failed": t.requests_failed,
        "traffic_held_s": round(t.held_s, 1),
        "feature_waits": t.feature_waits,
        "feature_wait_s": round(t.feature_wait_s, 1),
        "feature_wait_timeouts": t.feature_wait_timeouts,
        "request_failures": dict(t.failures),
        "answers_by_version": dict(t.versions),
        "models": {m.version: {"kind": m.kind, "stage": m.stage.value, "metrics": m.metrics} for m in result.models},
        "champions": result.champions,
        "monitor_requests": result.monitor_requests,
        "monitor_request_ids": result.request_ids,
        "monitor_request_redeliveries": result.request_redeliveries,
        "monitor_request_evidence": result.request_evidence,
        "drift_detected_after_s": result.drift_detected_after_s,
        "drift_to_champion_s": result.drift_to_champion_s,
        "post_drift_quality": [q.__dict__ for q in result.quality],
        "after_swap": None
        if result.after_swap is None
        else {
            "rows": result.after_swap.rows,
            "frauds": result.after_swap.frauds,
            "new": result.after_swap.new.__dict__,
            "old_rescored": result.after_swap.old.__dict__,
            "rescore_gap": result.after_swap.rescore_gap,
            "pr_auc_gain_ci": result.after_swap.gain_ci,
        },
        "report": result.report_paths,
    }


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    from services.demo.orchestrator import Demo

    console = Console()
    # Service output goes to a log file; the terminal shows the progress table.
    config.data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = config.data_dir.parent / f"{config.data_dir.name}-services.log"
    with open(log_path, "w") as service_log:
        if console.is_terminal:
            with Live(console=console, refresh_per_second=2) as live:
                demo = Demo(config, on_update=lambda d: live.update(_progress_table(d)))
                outcome = _run(demo, service_log, console)
        else:
            printed: set[str] = set()
            seen_quality = [""]

            def report(d: Demo) -> None:
                for stage in d.stages.values():
                    if stage.done and stage.name not in printed:
                        printed.add(stage.name)
                        print(f"rtml demo: {stage.name}: {stage.detail} ({stage.seconds or 0:.0f}s)", flush=True)
                quality = d.status.get("quality") or {}
                line = f"labelled={quality.get('labelled')} frauds={quality.get('positives')} recall={quality.get('recall')} pr_auc={quality.get('pr_auc')}"
                if quality and line != seen_quality[0]:
                    seen_quality[0] = line
                    print(f"rtml demo: t={d.traffic.transactions} monitor {line}", flush=True)

            demo = Demo(config, on_update=report)
            outcome = _run(demo, service_log, console)
    result, error = outcome
    if result is not None:
        console.print(summary_table(result))
        summary_path = config.data_dir.parent / f"{config.data_dir.name}-summary.json"
        summary_path.write_text(json.dumps(summary_json(result, error), indent=2, default=str) + "\n")
        console.print(f"summary: {summary_path}")
    console.print(f"service logs: {log_path}")
    if error:
        console.print(f"[red]rtml demo failed:[/] {error}")
        return 1
    return 0 if result is not None and result.ok else 1


def _run(demo: Demo, service_log: io.TextIOBase | Any, console: Console) -> tuple[DemoResult | None, str]:
    from services.demo.orchestrator import DemoFailed

    try:
        return demo.run(out=service_log), ""
    except DemoFailed as exc:
        return demo.partial_result(), str(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return demo.partial_result(), "interrupted"
