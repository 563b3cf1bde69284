#!/usr/bin/env python3
"""plot.py RESULTS PNG: the PNG of docs/benchmarks.md (see scripts/plot-bench).
Bars are medians; the whiskers span the runs' min-max."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"quicprobe": "#1f77b4", "aioquic": "#ff7f0e", "raw UDP": "#7f7f7f"}


def summary(data: dict, rid: str, metric: str):
    for e in data["results"]:
        if e["id"] == rid:
            return (e.get("summary") or {}).get(metric)
    return None


def bars(ax, groups: list[str], series: dict[str, list], unit: str) -> None:
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs, meds, lo, hi = [], [], [], []
        for g, s in enumerate(values):
            if s is None:
                continue
            xs.append(g + (i - (len(series) - 1) / 2) * width)
            meds.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
        ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=name, color=COLOURS[name])
        for x, m, h in zip(xs, meds, hi):
            ax.annotate(f"{m:,.0f}", (x, m + h), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(unit)
    ax.grid(axis="y", alpha=0.3)


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    groups, q, a = [], [], []
    for case in ("sequential", "concurrent"):
        for server in ("lab", "msquic"):
            e = next((x for x in data["results"] if x["id"] == f"{case}/{server}/quicprobe"), None)
            label = f"{case}\n{server}" + (f"\n{e['in_flight']} in flight" if e and e["in_flight"] > 1 else "")
            groups.append(label)
            q.append(summary(data, f"{case}/{server}/quicprobe", "handshakes_per_second"))
            a.append(summary(data, f"{case}/{server}/aioquic", "handshakes_per_second"))
    bars(left, groups, {"quicprobe": q, "aioquic": a}, "handshakes/s (strict verification)")
    left.set_ylim(0, left.get_ylim()[1] * 1.15)
    left.legend(fontsize=8, loc="upper left")
    left.set_title("Handshakes per second")

    udp = summary(data, "bulk/raw-udp/iperf3", "mb_per_s")
    groups = ["from lab", "from msquic"]
    series = {
        "quicprobe": [summary(data, f"bulk/{s}/quicprobe", "mb_per_s") for s in ("lab", "msquic")],
        "aioquic": [summary(data, f"bulk/{s}/aioquic", "mb_per_s") for s in ("lab", "msquic")],
    }
    bars(right, groups, series, "MB/s (10^6 bytes)")
    if udp:
        right.axhline(udp["median"], color=COLOURS["raw UDP"], linestyle="--",
                      label=f"raw UDP goodput, iperf3 -u 1350 B: {udp['median']:,.0f}")
        right.axhline(udp["median"] / 2, color=COLOURS["raw UDP"], linestyle=":",
                      label="50 % of raw UDP (target)")
    udp_gso = summary(data, "bulk/raw-udp-gso/python", "mb_per_s")
    if udp_gso:
        # Far above the bars (several GB/s): named in the legend, not drawn.
        right.plot([], [], " ", label=f"raw UDP with GSO/GRO, 1350 B: {udp_gso['median']:,.0f} (not drawn)")

    right.set_ylim(0, right.get_ylim()[1] * 1.3)
    right.legend(fontsize=8, loc="upper left", ncol=2)
    right.set_title("Bulk download over hq-interop")
    m = data["machine"]
    fig.suptitle(f"quicprobe vs aioquic {data['versions'].get('aioquic', '')}, loopback, "
                 f"{m['cpu_model']} ({m['cores']} cores), {data['mode']} run {data['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
