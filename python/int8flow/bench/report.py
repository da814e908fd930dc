"""The benchmark's outputs: progress line, results.json, the table, the chart;
for `--trained`, trained.json and the markdown accuracy table trained.md."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import int8flow

PACKAGES = ("int8flow", "tensorflow", "tensorflow-cpu", "keras", "numpy", "ai-edge-litert",
            "tf2onnx", "onnx", "onnxruntime", "openvino", "nncf")


class Progress:
    """A progress bar on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done_steps, self.start = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done_steps = min(self.done_steps + 1, self.total)
        filled = 30 * self.done_steps // max(self.total, 1)
        line = (f"[{'#' * filled}{'.' * (30 - filled)}] {self.done_steps}/{self.total} "
                f"{time.monotonic() - self.start:5.0f}s  {what}")
        sys.stderr.write(f"\r{line[:120]:<120}" if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def machine() -> dict[str, Any]:
    cpu = int8flow.cpu_features()
    return {"cpu": cpu["model"], "cores": cpu["cores"], "flags": cpu["flags"], "int8_path": cpu["int8_path"],
            "onednn": {"version": cpu["onednn_version"], "isa": cpu["onednn_isa"]},
            "memory_bytes": cpu["memory_bytes"], "platform": platform.platform(),
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def header(settings: Any) -> dict[str, Any]:
    """What every results file starts with: the machine, the package versions and the settings."""
    return {"machine": machine(), "versions": versions(),
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()}}


def collect(rows: list, settings: Any) -> dict[str, Any]:
    """The header and every row, as results.json has them."""
    return {**header(settings),
            "rows": [{k: v for k, v in dataclasses.asdict(r).items() if k != "latencies"} for r in rows]}


def write(rows: list, settings: Any, out: Path, peaks: dict[str, float]) -> dict[str, Any]:
    """results.json and the chart; `peaks` are this machine's GEMM GFLOP/s per precision."""
    results = {**collect(rows, settings), "peak_gflops": peaks}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    chart(results, out / "speedup.png")
    return results


def write_trained(rows: list, settings: Any, out: Path) -> dict[str, Any]:
    """`--trained`'s results: trained.json, and trained.md with trained_table's table."""
    results = collect(rows, settings)
    (out / "trained.json").write_text(json.dumps(results, indent=2))
    (out / "trained.md").write_text(trained_table(results) + "\n")
    return results


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, oneDNN {m['onednn']['version']} ({m['onednn']['isa']}), "
            f"int8 path {m['int8_path']}")


def table(results: dict[str, Any]) -> str:
    peaks = ", ".join(f"{p} {v:.0f}" for p, v in results["peak_gflops"].items()) or "not measured"
    lines = [f"{machine_line(results['machine'])}; "
             "speedup = stock tf.function median / row median, same run; "
             "RSS = the worker's while serving, peak includes conversion; serve = RSS of a process "
             "that loaded only the saved artifact and served it (--serving-memory); "
             f"GFLOP/s from the model's MACs, % of this machine's GEMM peak for the row's precision ({peaks})",
             f"{'model':<14}{'b':>3} {'variant':<22}{'median ms':>10}{'p90':>9}{'p99':>9}"
             f"{'items/s':>9}{'speedup':>8}{'cosine':>8}{'top1':>6}{'GFLOP/s':>8}{'%peak':>6}"
             f"{'RSS MiB':>8}{'peak':>7}{'serve':>7}{'size MiB':>9}{'load rps':>9}  note"]
    for row in results["rows"]:
        f = row["figures"]
        load = f.get("load", {})
        size = f.get("artifact_bytes")
        rss, peak = f.get("rss_bytes"), f.get("peak_rss_bytes")
        serving = f.get("serving", {}).get("rss_bytes")
        note = f.get("serving", {}).get("error") or row["reason"]
        lines.append(
            f"{row['model']:<14}{row['batch']:>3} {row['variant']:<22}"
            f"{_fmt(f.get('median_ms'), '.2f'):>10}{_fmt(f.get('p90_ms'), '.2f'):>9}"
            f"{_fmt(f.get('p99_ms'), '.2f'):>9}{_fmt(f.get('throughput_per_s'), '.1f'):>9}"
            f"{_fmt(f.get('speedup_vs_reference'), '.2f'):>8}{_fmt(f.get('cosine_mean'), '.4f'):>8}"
            f"{_fmt(f.get('top1_agreement'), '.2f'):>6}{_fmt(f.get('gflops'), '.1f'):>8}"
            f"{_fmt(f.get('percent_of_peak'), '.0f'):>6}{_fmt(rss and rss / 2**20, '.0f'):>8}"
            f"{_fmt(peak and peak / 2**20, '.0f'):>7}{_fmt(serving and serving / 2**20, '.0f'):>7}"
            f"{_fmt(size and size / 2**20, '.1f'):>9}{_fmt(load.get('requests_per_s'), '.1f'):>9}"
            f"  {note[:90]}")
    return "\n".join(lines)


def _note(row: dict[str, Any]) -> str:
    return "" if row["status"] == "ok" else f"{row['status']}: {' '.join(row['reason'].split())[:160]}"


def trained_table(results: dict[str, Any]) -> str:
    """The accuracy table of `--trained`, in markdown: per model and variant, top-1
    agreement with the reference on the evaluation set, test accuracy and its
    drop against the reference (points), cosine against the reference and, for an
    embedding, the share of clear nearest neighbours kept."""
    lines = [f"{machine_line(results['machine'])}. Against stock TF's `tf.function` (FP32), same weights.", "",
             "| model | variant | top-1 agreement | test accuracy (%) | drop (points) | cosine min | cosine mean "
             "| neighbours kept | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in results["rows"]:
        f = row["figures"]
        accuracy, drop = f.get("test_accuracy"), f.get("accuracy_drop")
        cells = [row["model"], row["variant"], _fmt(f.get("top1_agreement"), ".4f"),
                 _fmt(accuracy and 100 * accuracy, ".2f"), _fmt(drop and 100 * drop, "+.2f"),
                 _fmt(f.get("cosine_min"), ".4f"), _fmt(f.get("cosine_mean"), ".4f"),
                 _fmt(f.get("neighbours_kept"), ".4f"), _note(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Grouped bars of each variant's speedup over stock tf.function, per model,
    each labelled with its percentage of this machine's peak for its precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    measured = [r for r in results["rows"] if "speedup_vs_reference" in r["figures"]]
    groups = sorted({(r["model"], r["batch"]) for r in measured}, key=str)
    variants = list(dict.fromkeys(r["variant"] for r in measured))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) * max(1, len(variants)) / 3), 4.5))
    width = 0.8 / max(1, len(variants))
    for i, variant in enumerate(variants):
        bars = [(g, r["figures"]) for g, key in enumerate(groups)
                for r in measured if (r["model"], r["batch"]) == key and r["variant"] == variant]
        ax.bar([g + i * width for g, _ in bars], [f["speedup_vs_reference"] for _, f in bars], width, label=variant)
        for g, f in bars:  # each bar says how close to this machine's peak it ran
            if "percent_of_peak" in f:
                ax.annotate(f"{f['percent_of_peak']:.0f}%", (g + i * width, f["speedup_vs_reference"]),
                            ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_yscale("log", base=2)  # speedups span 0.02x to 10x+: ratios read evenly
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([g + width * (len(variants) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels([f"{m} (bs{b})" for m, b in groups])
    ax.set_ylabel("speedup vs stock TF tf.function (log scale); label: % of peak")
    ax.set_title(f"int8flow bench: {results['machine']['cpu']}, {results['settings']['threads']} threads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
