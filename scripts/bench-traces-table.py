"""Prints the tracing benchmark's table from the rows `scripts/bench traces` wrote:
round, mode, sink stats before and after, and parley-bench-messages' output (one line)."""

import json
import re
import statistics
import sys

MODES = [("off", "traces off"), ("0.01", "sampled at 1 %"), ("1", "sampled at 100 %")]
runs = {mode: [] for mode, _ in MODES}
for line in open(sys.argv[1], encoding="utf-8"):
    _round, mode, before, after, output = line.rstrip("\n").split("\t", 4)
    rate = float(re.search(r"\*\*(\d+) msg/s\*\*", output).group(1))
    cpu = dict(
        (name, float(us))
        for name, us in re.findall(r"(\w+) [\d.]+ s = (\d+) µs/msg", output.split("CPU during the burst")[1])
    )
    # Bytes over every message the run sent (burst and steady phase).
    burst, steady = re.search(r"(\d+) messages from \d+ concurrent senders, then (\d+) at", output).groups()
    exported = (json.loads(after)["bytes"] - json.loads(before)["bytes"]) / (int(burst) + int(steady))
    runs[mode].append({"rate": rate, "cpu": cpu, "exported": exported})

baseline = runs["off"]
base_rate = statistics.median(r["rate"] for r in baseline)
base_cpu = statistics.median(r["cpu"]["api"] + r["cpu"]["projections"] for r in baseline)
print("| tracing | msg/s (3 runs) | median vs off | api + projections CPU µs/msg, median | vs off | OTLP bytes sent per message |")
print("|---|---|---|---|---|---|")
for mode, label in MODES:
    rows = runs[mode]
    if not rows:
        continue
    rate = statistics.median(r["rate"] for r in rows)
    cpu = statistics.median(r["cpu"]["api"] + r["cpu"]["projections"] for r in rows)
    per_message = statistics.median(r["exported"] for r in rows)
    rates = " / ".join(f"{r['rate']:.0f}" for r in rows)
    print(
        f"| {label} | {rates} | {(rate / base_rate - 1) * 100:+.1f} % "
        f"| {cpu:.0f} | {(cpu / base_cpu - 1) * 100:+.1f} % | {per_message:.0f} |"
    )
