"""The markdown tables of scripts/bench-compare, from its runs directory.

Usage: compare_table.py RUNS_DIR WORKLOAD...
RUNS_DIR holds NAME.X.ROUND.json (imbus-bench --json, X = a or b), for overload runs
NAME.X.ROUND.capacity (the closed-loop rate it was 2x of), idle.txt ("X PROC ms/s"
lines) and floor.txt (bench_store_floor's output). Figures are medians over the rounds; ratios are B/A.
"""
import glob
import json
import os
import statistics
import sys

PROCS = ["broker", "edge", "actor", "mysqld"]


def load(runs, name, x):
    out = []
    for path in sorted(glob.glob(os.path.join(runs, f"{name}.{x}.*.json"))):
        try:
            with open(path) as f:
                j = json.load(f)
        except (OSError, ValueError):
            continue
        cap = path[: -len(".json")] + ".capacity"
        if os.path.exists(cap):
            with open(cap) as f:
                j["capacity"] = float(f.read().strip() or 0)
        out.append(j)
    return out


def num(j, key):
    v = j.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def lat_ms(j, q):
    v = j.get("latency_us", {}).get("end_to_end", {}).get(q)
    return float(v) / 1000 if isinstance(v, (int, float)) else None


def median(runs, get):
    vals = [v for v in (get(j) for j in runs) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "-" if a is None or b is None or a == 0 else f"{b / a:.2f}"


def faults(runs):
    n = 0
    for j in runs:
        for key in ("lost", "duplicates", "misrouted", "errors", "conn_lost"):
            n += int(num(j, key) or 0)
    return n


def main():
    runs_dir, names = sys.argv[1], sys.argv[2:]
    data = {(n, x): load(runs_dir, n, x) for n in names for x in "ab"}

    print("## Throughput and end-to-end latency (msg/s acked; ms)\n")
    print("| workload | A msg/s | B msg/s | B/A | A p50 | B p50 | A p99 | B p99 | p99 B/A | runs A/B | faults A/B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        a, b = data[(n, "a")], data[(n, "b")]
        if not a and not b:
            continue
        ra, rb = median(a, lambda j: num(j, "acked_rate")), median(b, lambda j: num(j, "acked_rate"))
        p50a, p50b = median(a, lambda j: lat_ms(j, "p50")), median(b, lambda j: lat_ms(j, "p50"))
        p99a, p99b = median(a, lambda j: lat_ms(j, "p99")), median(b, lambda j: lat_ms(j, "p99"))
        print(f"| {n} | {fmt(ra, 0)} | {fmt(rb, 0)} | {ratio(ra, rb)} | {fmt(p50a)} | {fmt(p50b)} "
              f"| {fmt(p99a)} | {fmt(p99b)} | {ratio(p99a, p99b)} | {len(a)}/{len(b)} "
              f"| {faults(a)}/{faults(b)} |")
    print("\nfaults: lost + duplicates + misrouted + errors + connections lost, summed over the runs.")

    print("\n## Server CPU per acked message (µs; utime+stime over the send phase)\n")
    print("| workload | " + " | ".join(f"{p} A / B" for p in PROCS) + " | total A | total B | B/A |")
    print("|---|" + "---:|" * (len(PROCS) + 3))
    for n in names:
        a, b = data[(n, "a")], data[(n, "b")]
        if not a and not b:
            continue
        cells = []
        for p in PROCS:
            key = f"cpu_us_per_msg_{p}"
            cells.append(f"{fmt(median(a, lambda j: num(j, key)))} / {fmt(median(b, lambda j: num(j, key)))}")
        ta = median(a, lambda j: num(j, "cpu_us_per_msg_total"))
        tb = median(b, lambda j: num(j, "cpu_us_per_msg_total"))
        print(f"| {n} | " + " | ".join(cells) + f" | {fmt(ta)} | {fmt(tb)} | {ratio(ta, tb)} |")

    over = [n for n in names if n.startswith("overload")]
    if over:
        print("\n## Overload (open loop at 2x the build's closed-loop window-4 rate)\n")
        print("| build | capacity msg/s | offered msg/s | acked msg/s | goodput (acked / capacity) "
              "| acked within deadline (of sent) | p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for n in over:
            for x in "ab":
                r = data[(n, x)]
                if not r:
                    continue
                cap = median(r, lambda j: j.get("capacity"))
                acked = median(r, lambda j: num(j, "acked_rate"))
                good = median(r, lambda j: (num(j, "acked_rate") or 0) / j["capacity"]
                              if j.get("capacity") else None)
                share = median(r, lambda j: num(j, "in_deadline_share"))
                print(f"| {x.upper()} | {fmt(cap, 0)} | {fmt(median(r, lambda j: num(j, 'target_rate')), 0)} "
                      f"| {fmt(acked, 0)} | {fmt(good, 2)} | {fmt(share * 100 if share is not None else None)} % "
                      f"| {fmt(median(r, lambda j: lat_ms(j, 'p99')))} |")
        deadline = next((num(j, "deadline_ms") for r in data.values() for j in r), None)
        print(f"\ndeadline: {fmt(deadline, 0)} ms from the scheduled send to the ack.")

    idle_path = os.path.join(runs_dir, "idle.txt")
    if os.path.exists(idle_path):
        idle = {}
        with open(idle_path) as f:
            for line in f:
                x, proc, ms = line.split()
                idle[(x, proc)] = ms
        print("\n## Idle cost (ms of CPU per second, both stacks up, no load; one shared mysqld)\n")
        print("| build | " + " | ".join(PROCS) + " |")
        print("|---|" + "---:|" * len(PROCS))
        for x in "ab":
            print(f"| {x.upper()} | " + " | ".join(idle.get((x, p), "-") for p in PROCS) + " |")

    floor_path = os.path.join(runs_dir, "floor.txt")
    if os.path.exists(floor_path):
        floor = {}
        with open(floor_path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.startswith("store_floor_"):
                    floor[key[len("store_floor_"):]] = value.strip()
        print("\n## Store floor (bench_store_floor: MariaDB alone, multi-row INSERTs into messages)\n")
        if "mysqld_cpu_us_per_row" not in floor:
            print("```\n" + open(floor_path).read().strip() + "\n```")
            return
        per_row = float(floor["mysqld_cpu_us_per_row"])
        print(f"{floor.get('rows')} rows, {floor.get('rows_per_statement')} per INSERT, "
              f"{floor.get('rows_per_commit')} per commit (innodb_flush_log_at_trx_commit="
              f"{floor.get('flush_log_at_trx_commit')}, log_bin={floor.get('log_bin')}): "
              f"**{per_row:.2f} µs mysqld CPU per row**, {floor.get('rows_per_s')} rows/s.\n")
        print("| workload | total µs/msg A | B | B ÷ floor | mysqld µs/msg A | B | B ÷ floor |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for n in names:
            a, b = data[(n, "a")], data[(n, "b")]
            if not n.startswith("closed") or not (a or b):
                continue
            ta = median(a, lambda j: num(j, "cpu_us_per_msg_total"))
            tb = median(b, lambda j: num(j, "cpu_us_per_msg_total"))
            ma = median(a, lambda j: num(j, "cpu_us_per_msg_mysqld"))
            mb = median(b, lambda j: num(j, "cpu_us_per_msg_mysqld"))
            print(f"| {n} | {fmt(ta)} | {fmt(tb)} | {ratio(per_row, tb)} | {fmt(ma)} | {fmt(mb)} "
                  f"| {ratio(per_row, mb)} |")


if __name__ == "__main__":
    main()
