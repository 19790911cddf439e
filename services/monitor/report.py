"""The monitor's report: one figure of everything over time, wrapped in a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in a service; must precede the first figure

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from services.monitor.drift import SCORE
from services.monitor.state import ReportData
from services.monitor.timeline import MIN_SPACING, Promotion

PROMOTION_COLOUR = "#c0392b"
VERSION_COLOURS = ("#dbe9f6", "#fde7c8", "#dff2d8", "#ecdff5", "#f9dede", "#e0f2f1")


def _x(moment: datetime) -> float:
    """Matplotlib's date number: plotting floats keeps the axes' types plain."""
    return float(mdates.date2num(moment))


@dataclass(frozen=True)
class SnapshotPaths:
    html: Path
    png: Path


def _mark_promotions(ax: Axes, promotions: list[Promotion], label: bool) -> None:
    for promo in promotions:
        ax.axvline(_x(promo.at), color=PROMOTION_COLOUR, linestyle="--", linewidth=1.4)
        if label:
            text = f"{'promoted' if promo.event == 'promoted' else 'rolled back to'} {promo.version}"
            ax.annotate(
                text,
                xy=(_x(promo.at), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                color=PROMOTION_COLOUR,
                fontsize=9,
                fontweight="bold",
            )


def _shade_versions(ax: Axes, data: ReportData) -> dict[str, str]:
    colours: dict[str, str] = {}
    for point in data.points:
        colour = colours.setdefault(point.model_version, VERSION_COLOURS[len(colours) % len(VERSION_COLOURS)])
        ax.axvspan(_x(point.since), _x(point.at), color=colour, alpha=0.9, linewidth=0)
    return colours


def _time_axis(ax: Axes) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
    ax.grid(True, alpha=0.3)


def _plot_volume(ax: Axes, data: ReportData) -> None:
    starts = [_x(p.since) for p in data.points]
    widths = [max(_x(p.at) - _x(p.since), MIN_SPACING.total_seconds() / 86_400) for p in data.points]
    ax.bar(starts, [p.rate for p in data.points], width=widths, color="#34495e", align="edge")
    ax.set_title("Prediction volume")
    ax.set_ylabel("predictions / s")


def _plot_versions(ax: Axes, data: ReportData) -> None:
    colours = _shade_versions(ax, data)
    order = list(colours)
    ax.step(
        [_x(p.at) for p in data.points],
        [order.index(p.model_version) for p in data.points],
        where="post",
        color="#2c3e50",
        linewidth=2,
    )
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(-0.6, max(len(order) - 0.4, 0.6))
    ax.set_title("Model version served")


def _plot_psi(ax: Axes, data: ReportData) -> None:
    monitored = set(data.state["drift"]["monitored"])
    threshold = data.state["drift"]["psi_threshold"]
    names = sorted({n for p in data.points for n in p.psi})
    watched_peak = 0.0
    for name in names:
        series = [(p.at, p.psi[name]) for p in data.points if name in p.psi]
        watched = name in monitored
        if watched:
            watched_peak = max(watched_peak, *(v for _, v in series))
        ax.plot(
            [_x(t) for t, _ in series],
            [v for _, v in series],
            marker="o" if watched else None,
            markersize=2.5,
            linewidth=1.6 if watched else 0.7,
            color=None if watched else "#b0b0b0",
            label=name if watched else None,
        )
    score = [(p.at, p.score_psi) for p in data.points if p.score_psi is not None]
    if score:
        ax.plot(
            [_x(t) for t, _ in score],
            [v for _, v in score],
            color="black",
            marker="o",
            markersize=3,
            linewidth=2.2,
            label="score",
        )
        watched_peak = max(watched_peak, *(v for _, v in score if v is not None))
    ax.axhline(threshold, color=PROMOTION_COLOUR, linewidth=1, alpha=0.7, label="threshold")
    # Scaled to what can alarm: a rhythmic, unmonitored input (hour of day) would flatten everything else.
    ax.set_ylim(0, max(threshold * 2, watched_peak * 1.15))
    ax.set_title("Drift: PSI against the serving model's reference (grey: reported, not alarmed on)")
    ax.set_ylabel("PSI")
    if names or score:
        ax.legend(loc="upper left", fontsize=7, ncol=4)


def _plot_quality(ax: Axes, data: ReportData) -> None:
    for name, colour in (("precision", "#2980b9"), ("recall", "#27ae60"), ("pr_auc", "#8e44ad")):
        series = [(p.at, getattr(p, name)) for p in data.points if getattr(p, name) is not None]
        if series:
            ax.plot(
                [_x(t) for t, _ in series],
                [v for _, v in series],
                color=colour,
                marker="o",
                markersize=2.5,
                linewidth=1.6,
                label=name,
            )
    quality = data.state["quality"]
    ax.axhline(quality["min_recall"], color="#27ae60", linestyle=":", linewidth=1, label="min recall")
    ax.axhline(quality["min_pr_auc"], color="#8e44ad", linestyle=":", linewidth=1, label="min PR-AUC")
    ax.set_ylim(0, 1.05)
    ax.set_title("Live quality over the labelled window")
    ax.legend(loc="lower left", fontsize=7, ncol=5)


def _plot_score(ax: Axes, data: ReportData) -> None:
    if not data.score_reference:
        ax.text(0.5, 0.5, "no reference statistics for the serving version", ha="center", va="center")
        ax.set_axis_off()
        return
    bins = range(len(data.score_reference))
    ax.bar([b - 0.2 for b in bins], data.score_reference, width=0.4, color="#95a5a6", label="reference")
    ax.bar([b + 0.2 for b in bins], data.score_live, width=0.4, color="#e67e22", label="live window")
    cuts = data.score_cuts
    labels = [f"<{cuts[0]:.2g}"] + [f"{a:.2g}-{b:.2g}" for a, b in itertools.pairwise(cuts)]
    labels += [f">={cuts[-1]:.2g}"] if cuts else []
    ax.set_xticks(list(bins), labels[: len(data.score_reference)], rotation=30, fontsize=7)
    ax.set_title(f"Score distribution, version {data.state['current_version']}: live vs reference (per bin)")
    ax.set_ylabel("share")
    ax.legend(fontsize=8)


def render_png(data: ReportData) -> bytes:
    figure = Figure(figsize=(12, 17), dpi=90, layout="constrained")
    axes = figure.subplots(5, 1, height_ratios=[1, 0.6, 1.3, 1.1, 1])
    volume, versions, psi, quality, score = axes
    if data.points:
        for ax, draw in (
            (volume, _plot_volume),
            (versions, _plot_versions),
            (psi, _plot_psi),
            (quality, _plot_quality),
        ):
            draw(ax, data)
            _time_axis(ax)
            _mark_promotions(ax, data.promotions, label=ax in (volume, versions))
        first, last = data.points[0].since, data.points[-1].at
        stamps = [first, last, *(p.at for p in data.promotions)]
        margin = (max(stamps) - min(stamps)) * 0.02 + MIN_SPACING
        for ax in (volume, versions, psi, quality):
            ax.set_xlim(_x(min(stamps) - margin), _x(max(stamps) + margin))
    else:
        volume.text(0.5, 0.5, "no predictions yet", ha="center", va="center", fontsize=14)
        for ax in (volume, versions, psi, quality):
            ax.set_axis_off()
    _plot_score(score, data)
    figure.suptitle(f"RTML monitor - model {data.state['model_name']}", fontsize=14)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def render_html(data: ReportData, png: bytes) -> str:
    state = data.state
    counts, drift, quality = state["counts"], state["drift"], state["quality"]
    summary = [
        ("serving version", state["current_version"]),
        ("predictions read", counts["predictions"]),
        ("labels read / joined", f"{counts['labels']} / {counts['joined']}"),
        ("malformed skipped", sum(counts["malformed"].values())),
        ("drift window", f"{drift['window']} (alarms from {drift['min_samples']})"),
        ("score PSI", drift["score_psi"]),
        ("score chi-square p", drift["score_chi2_pvalue"]),
        ("live precision", quality["precision"]),
        ("live recall", quality["recall"]),
        ("live PR-AUC", quality["pr_auc"]),
        ("labelled window (fraud)", f"{quality['labelled']} ({quality['positives']})"),
        ("alarm below: recall / PR-AUC", f"{_fmt(quality['min_recall'])} / {_fmt(quality['min_pr_auc'])}"),
        (
            "set from test recall / PR-AUC",
            f"{_fmt(quality['test_recall_at_fpr_0.01'])} / {_fmt(quality['test_pr_auc'])}",
        ),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in summary)
    psi_rows = "".join(
        f"<tr class='{'watched' if name in drift['monitored'] else ''}'><td>{html.escape(name)}</td>"
        f"<td>{value:.3f}</td></tr>"
        for name, value in sorted(drift["psi"].items(), key=lambda item: -item[1])
    )
    if drift["score_psi"] is not None:
        psi_rows = f"<tr class='watched'><td>{SCORE}</td><td>{drift['score_psi']:.3f}</td></tr>" + psi_rows
    promotions = (
        "".join(
            f"<li class='promotion' data-version='{html.escape(p['version'])}'>"
            f"{html.escape(p['at'])}: {html.escape(p['event'].replace('_', ' '))} <b>{html.escape(p['version'])}</b>"
            f"{' (was ' + html.escape(p['previous_version']) + ')' if p['previous_version'] else ''}</li>"
            for p in state["promotions"]
        )
        or "<li>none seen</li>"
    )
    requests = (
        "".join(
            f"<li class='request'>{html.escape(r['at'])}: <b>{html.escape(r['reason'])}</b> for "
            f"{html.escape(r['model_version'])} ({html.escape(r['request_id'])})"
            f"<pre>{html.escape(json.dumps(r['evidence'], indent=1))}</pre></li>"
            for r in state["requests"]
        )
        or "<li>none</li>"
    )
    image = base64.b64encode(png).decode("ascii")
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RTML monitor report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 4px; }} .muted {{ color: #777; }}
.grid {{ display: flex; gap: 32px; flex-wrap: wrap; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }}
tr.watched td {{ font-weight: bold; }}
li.promotion {{ color: {PROMOTION_COLOUR}; }} pre {{ font-size: 11px; background: #f6f6f6; padding: 6px; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>RTML monitor report</h1>
<p class="muted">model {html.escape(state["model_name"])} - generated {generated}</p>
<div class="grid">
<div><h2>Now</h2><table>{rows}</table></div>
<div><h2>PSI per input</h2><table><tr><th>input</th><th>PSI</th></tr>{psi_rows}</table>
<p class="muted">bold: inputs that can trigger retraining (threshold {drift["psi_threshold"]})</p></div>
<div><h2>Model changes</h2><ul id="promotions">{promotions}</ul>
<h2>Retraining requests</h2><ul id="requests">{requests}</ul></div>
</div>
<h2>Over time</h2>
<img alt="monitor plots" src="data:image/png;base64,{image}">
</body></html>
"""


def write_snapshot(data: ReportData, directory: Path) -> SnapshotPaths:
    """Write ``report-<time>.png`` and ``.html`` into ``directory``; the HTML embeds the PNG too."""
    directory.mkdir(parents=True, exist_ok=True)
    png = render_png(data)
    stem = f"report-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    paths = SnapshotPaths(html=directory / f"{stem}.html", png=directory / f"{stem}.png")
    paths.png.write_bytes(png)
    paths.html.write_text(render_html(data, png), encoding="utf-8")
    return paths
