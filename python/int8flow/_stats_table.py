"""`int8flow.stats_table()`: the counters of `int8flow.stats()` as text."""
from __future__ import annotations

from typing import Any

_PRECISIONS = ("int8", "bf16", "fp32")  # the per-op time split of stats()["ops"]


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [line(header), *(line(r) for r in rows)]


def format_stats(stats: dict[str, Any]) -> str:
    """One section per kind of counter; ops sorted by total time."""
    out: list[str] = []
    ops = stats["ops"]
    if ops:
        total = sum(o["total_ms"] for o in ops.values()) or 1.0
        rows = [[op, str(o["count"]), f"{o['total_ms']:.3f}", f"{1e3 * o['total_ms'] / o['count']:.1f}",
                 f"{100 * o['total_ms'] / total:.1f}", *(f"{o[f'{p}_ms']:.3f}" for p in _PRECISIONS)]
                for op, o in sorted(ops.items(), key=lambda kv: -kv[1]["total_ms"])]
        out += ["QCPU ops", *_rows(["op", "count", "total ms", "avg us", "%", *(f"{p} ms" for p in _PRECISIONS)],
                                   rows)]
        split = {p: sum(o[f"{p}_ms"] for o in ops.values()) for p in _PRECISIONS}
        out.append(f"kernel time: {sum(split.values()):.3f} ms ("
                   + ", ".join(f"{p} {ms:.3f}" for p, ms in split.items()) + ")")
    elif not stats["recording_ops"]:
        out.append("QCPU ops: not recorded (int8flow.record_op_stats(True) or INT8FLOW_OP_STATS=1)")
    else:
        out.append("QCPU ops: none ran since the last reset")
    cpu_ops = stats["cpu_ops"]
    out.append("")
    if cpu_ops:
        out += ["ops placed on CPU (fallbacks)",
                *_rows(["op", "nodes"], [[op, str(n)] for op, n in sorted(cpu_ops.items())])]
    else:
        out.append("ops placed on CPU (fallbacks): none")
    out += ["", *_rows(["copies", "count", "bytes"],
                       [[kind, str(c["count"]), str(c["bytes"])] for kind, c in stats["copies"].items()])]
    out += ["", *_rows(["caches held", "entries", "bytes"],
                       [[kind, str(c["entries"]), str(c["bytes"])] for kind, c in stats["caches"].items()])]
    return "\n".join(out)
