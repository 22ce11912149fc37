#!/usr/bin/env python3
"""Helpers of scripts/calibrate: measure this machine, write a simulator profile, compare.

Standard library only. Subcommands (each writes JSON, or TOML for `profile`):

  disk DIR OUT             fdatasync, buffered write and buffered read latencies of 4 KiB
                           in DIR (the filesystem the server's data lives on)
  busy SECONDS             cores' worth of CPU the whole machine is using, sampled over SECONDS
  load OUT -- ARGV...      runs one squall-load invocation, measuring the server's CPU time
                           (--server-pid), the loader's, and everyone else's meanwhile
  metrics ENDPOINT OUT     a server's storage write latencies from its GET /metrics
  profile ...              derives the resource profile from the load measurements
  validate ...             real against simulated: saturation throughput, p50, p99, errors

CPU time comes from /proc/PID/stat (utime + stime, every thread of the process), the machine's
from /proc/stat; both count in clock ticks (normally 10 ms), so runs are seconds long.
"""

import argparse
import datetime
import json
import math
import os
import random
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = 4096

# Default profile figures the measured ones are scaled against (sim/profiles/default.toml).
DEFAULT_OPERATION_US = {
    "GetItem": 20.0,
    "PutItem": 30.0,
    "UpdateItem": 35.0,
    "DeleteItem": 25.0,
    "Query": 40.0,
    "Scan": 60.0,
    "BatchGetItem": 60.0,
    "BatchWriteItem": 80.0,
    "TransactGetItems": 60.0,
    "TransactWriteItems": 100.0,
}
DEFAULT_REQUEST_US = 30.0
DEFAULT_REQUEST_PER_KIB_US = 1.5
DEFAULT_APPLY_PER_KIB_US = 2.0
READ_OPERATIONS = ("Query", "Scan", "BatchGetItem", "TransactGetItems")
# Share of failed operations a CPU measurement may have.
FAILED_SHARE_MAX = 0.01
# Smallest per-operation figure the profile gets.
OPERATION_US_MIN = 1.0
WRITE_OPERATIONS = ("DeleteItem", "BatchWriteItem", "TransactWriteItems")

# Request bodies of YCSB's default records (10 fields of 100 bytes, keys `user` + 19 digits), as
# the workloads crate writes them; the raft entry of a write carries the same body. Only the
# per-KiB terms use them, a few percent of an operation's cost, so estimates are enough.
BODY_BYTES = {"GetItem": 110, "UpdateItem": 260, "PutItem": 1250}


def proc_cpu_s(pid):
    """CPU seconds (user + system, all threads) process `pid` has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5), counted from the state (field 3) at index 0.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s():
    """CPU seconds every core has spent busy (anything but idle and iowait) since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def quantile(sorted_values, q):
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def summarise_us(samples_ns):
    values = sorted(samples_ns)
    return {
        "count": len(values),
        "median_us": round(quantile(values, 0.5) / 1000, 2),
        "p99_us": round(quantile(values, 0.99) / 1000, 2),
        "mean_us": round(sum(values) / len(values) / 1000, 2),
    }


def cmd_disk(args):
    """Latencies of the three disk commands the simulator models, 4 KiB each, in `args.dir`.

    Sync: append 4 KiB, then time fdatasync (RocksDB's WAL sync is an append and an fdatasync;
    an append changes the file size, so the sync also commits that metadata, as the WAL's does).
    Write: time an append of 4 KiB without a sync (into the page cache, as a WAL buffer write).
    Read: time a pread of 4 KiB at a random page of a file just written (from the page cache:
    the data set of the validation fits in memory, so reads never reach the device).
    Each loop is bounded by its count and by `args.seconds`.
    """
    os.makedirs(args.dir, exist_ok=True)
    block = os.urandom(PAGE)
    deadline = time.monotonic() + args.seconds
    result = {"dir": args.dir, "block_bytes": PAGE}

    path = os.path.join(args.dir, "calibrate-sync.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    syncs = []
    try:
        for _ in range(args.syncs):
            os.write(fd, block)
            start = time.perf_counter_ns()
            os.fdatasync(fd)
            syncs.append(time.perf_counter_ns() - start)
            if time.monotonic() > deadline:
                break
    finally:
        os.close(fd)
        os.unlink(path)
    result["sync"] = summarise_us(syncs)

    path = os.path.join(args.dir, "calibrate-write.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    writes, reads = [], []
    try:
        for _ in range(args.writes):
            start = time.perf_counter_ns()
            os.write(fd, block)
            writes.append(time.perf_counter_ns() - start)
        pages = len(writes)
        rng = random.Random(1)
        for _ in range(args.writes):
            offset = rng.randrange(pages) * PAGE
            start = time.perf_counter_ns()
            os.pread(fd, PAGE, offset)
            reads.append(time.perf_counter_ns() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    result["write"] = summarise_us(writes)
    result["read"] = summarise_us(reads)
    # The cost of the timing itself, to read the small figures against.
    overhead = []
    for _ in range(10000):
        start = time.perf_counter_ns()
        overhead.append(time.perf_counter_ns() - start)
    result["timer_overhead"] = summarise_us(overhead)
    write_json(args.out, result)


def parse_metrics(text):
    """Prometheus text exposition: {name: [(labels dict, value)]}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = {}
        for pair in rest.rstrip("}").split(","):
            if "=" in pair:
                key, _, raw = pair.partition("=")
                labels[key] = raw.strip('"')
        samples.setdefault(name, []).append((labels, float(value)))
    return samples


def cmd_metrics(args):
    """A server's storage write latency by durability, from GET /metrics, in microseconds."""
    import urllib.request

    with urllib.request.urlopen(args.endpoint.rstrip("/") + "/metrics", timeout=10) as response:
        samples = parse_metrics(response.read().decode())
    out = {"storage_write": {}}
    for durability in ("sync", "buffered"):
        def value(name, labels):
            for got, v in samples.get(name, []):
                if all(got.get(k) == want for k, want in labels.items()):
                    return v
            return None
        count = value("squall_storage_write_seconds_count", {"durability": durability}) or 0
        total = value("squall_storage_write_seconds_sum", {"durability": durability}) or 0.0
        entry = {"count": int(count), "mean_us": round(total / count * 1e6, 1) if count else None}
        for q, key in ((0.5, "median_us"), (0.9, "p90_us"), (0.99, "p99_us"), (0.999, "p999_us")):
            v = value("squall_storage_write_seconds", {"durability": durability, "quantile": str(q)})
            entry[key] = None if v is None else round(v * 1e6, 1)
        out["storage_write"][durability] = entry
    if not out["storage_write"]["sync"]["count"]:
        sys.exit(f"calibrate.py metrics: {args.endpoint} reports no synced writes")
    write_json(args.out, out)


def cmd_loopback(args):
    """Round trips of a 64-byte message over TCP on 127.0.0.1 (Nagle off), halved: the one-way
    latency between the validation's load generator and its server. Bounded by `args.count`
    and `args.seconds`.
    """
    import socket
    import threading

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo():
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = b"x" * 64
    deadline = time.monotonic() + args.seconds
    one_way = []
    for _ in range(args.count):
        start = time.perf_counter_ns()
        client.sendall(message)
        received = 0
        while received < len(message):
            received += len(client.recv(4096))
        one_way.append((time.perf_counter_ns() - start) // 2)
        if time.monotonic() > deadline:
            break
    client.close()
    thread.join(timeout=5)
    server.close()
    one_way.sort()
    result = summarise_us(one_way)
    result["p10_us"] = round(quantile(one_way, 0.10) / 1000.0, 1)
    result["p90_us"] = round(quantile(one_way, 0.90) / 1000.0, 1)
    write_json(args.out, result)


def cmd_busy(args):
    before, start = machine_busy_s(), time.monotonic()
    time.sleep(args.seconds)
    print(f"{(machine_busy_s() - before) / (time.monotonic() - start):.2f}")


def arg_after(argv, flag):
    for i, value in enumerate(argv[:-1]):
        if value == flag:
            return argv[i + 1]
    return None


def cmd_load(args):
    """One squall-load run, with the server's, the loader's and the rest of the machine's CPU."""
    argv = args.argv[1:] if args.argv and args.argv[0] == "--" else args.argv
    report = arg_after(argv, "--out")
    if report is None:
        sys.exit("calibrate.py load: squall-load needs --out")
    load_before = loadavg()
    server_before = proc_cpu_s(args.server_pid)
    machine_before = machine_busy_s()
    start = time.monotonic()
    with open(args.log, "w") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            raise
    wall = time.monotonic() - start
    server_cpu = proc_cpu_s(args.server_pid) - server_before
    machine_cpu = machine_busy_s() - machine_before
    loader_cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"squall-load exited with {code}; see {args.log}")
    summary = read_json(os.path.join(report, "summary.json"))
    ops = operations(summary)
    count = sum(op["count_all"] for op in ops.values())
    result = {
        "label": args.label,
        "command": argv,
        "wall_s": round(wall, 3),
        "server_cpu_s": round(server_cpu, 3),
        "loader_cpu_s": round(loader_cpu, 3),
        # Whatever else ran on the machine meanwhile, in cores: the disturbance.
        "others_cores": round(max(0.0, machine_cpu - server_cpu - loader_cpu) / wall, 3),
        "server_cores": round(server_cpu / wall, 3),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "operations_total": count,
        "server_cpu_us_per_op": round(server_cpu * 1e6 / count, 2) if count else None,
        "results": result_stats(summary, report),
    }
    write_json(args.out, result)
    print(
        f"{args.label}: {result['results']['ok_per_s']:.0f} ok/s, server {result['server_cores']:.2f} cores, "
        f"{result['server_cpu_us_per_op']} us/op, others {result['others_cores']:.2f} cores, "
        f"p50 {result['results']['p50_ms']} ms, p99 {result['results']['p99_ms']} ms"
    )


def operations(summary, section="results"):
    """Per workload operation: ok count, every outcome's count, percentiles of the ok outcome."""
    out = {}
    uncorrected = summary.get("uncorrected", {}).get("operations", {})
    for name, op in summary.get(section, {}).get("operations", {}).items():
        outcomes = op.get("outcomes", {})
        ok = outcomes.get("ok", {})
        service = uncorrected.get(name, {}).get("outcomes", {}).get("ok", {})
        out[name] = {
            "count_ok": ok.get("count", 0),
            "count_all": sum(o.get("count", 0) for o in outcomes.values()),
            "not_ok": {k: v.get("count", 0) for k, v in outcomes.items() if k != "ok"},
            "p50_ms": ms(ok.get("p50_us")),
            "p99_ms": ms(ok.get("p99_us")),
            "service_p50_ms": ms(service.get("p50_us")),
            "service_p99_ms": ms(service.get("p99_us")),
        }
    return out


def ms(us):
    return None if us is None else round(us / 1000, 3)


def read_hgrm(path):
    """An .hgrm percentile table as (value in ms, cumulative count) points."""
    points = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and not line.startswith("#"):
                try:
                    points.append((float(parts[0]), int(parts[2])))
                except ValueError:
                    continue
    return points


def merged_percentiles(paths, qs):
    """Percentiles of several operations' latencies together, from their .hgrm tables.

    A table lists the cumulative count at its percentile steps; the count at or below a value is
    that of the table's last step not above it, so a merged percentile is exact to the tables'
    resolution (a step is at most about 1.5 % of the values near the median, finer in the tail).
    """
    tables = [read_hgrm(p) for p in paths]
    tables = [t for t in tables if t]
    total = sum(t[-1][1] for t in tables)
    if total == 0:
        return [None for _ in qs]
    values = sorted({v for t in tables for v, _ in t})

    def below(table, value):
        count = 0
        for v, c in table:
            if v > value:
                break
            count = c
        return count

    cumulative = [(v, sum(below(t, v) for t in tables)) for v in values]
    answers = []
    for q in qs:
        target = q * total
        answers.append(next((round(v, 3) for v, c in cumulative if c >= target), round(values[-1], 3)))
    return answers


def result_stats(summary, report_dir):
    results = summary.get("results", {})
    ops = operations(summary)
    seconds = results.get("measured_seconds") or 0
    ok = sum(op["count_ok"] for op in ops.values())
    not_ok = {}
    for op in ops.values():
        for kind, count in op["not_ok"].items():
            not_ok[kind] = not_ok.get(kind, 0) + count
    hgrms = [os.path.join(report_dir, f"{name}.ok.hgrm") for name in ops]
    hgrms = [p for p in hgrms if os.path.exists(p)]
    p50, p99 = merged_percentiles(hgrms, [0.5, 0.99]) if hgrms else (None, None)
    # From sending a request to its answer, without the wait for the request's turn in the
    # open-loop schedule (the load generator's own timer sets that wait; see cmd_validate).
    service = [os.path.join(report_dir, f"{name}.ok.uncorrected.hgrm") for name in ops]
    service = [p for p in service if os.path.exists(p)]
    service_p50, service_p99 = merged_percentiles(service, [0.5, 0.99]) if service else (None, None)
    return {
        "measured_s": seconds,
        "ok": ok,
        "not_ok": not_ok,
        "ok_per_s": ok / seconds if seconds else 0.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "service_p50_ms": service_p50,
        "service_p99_ms": service_p99,
        "operations": ops,
    }


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def cmd_profile(args):
    """The resource profile from the load measurements and the disk probe.

    The simulator charges an operation `operation_us` where the request arrives (plus
    `request_per_kib_us` per KiB of body), and `apply_entry_us` (plus `apply_per_kib_us` per
    KiB) for each raft entry each replica applies. On a one-node cluster an eventually
    consistent GetItem never enters the log, so its measured CPU is GetItem's request cost; a
    strongly consistent one is a log entry, so the difference is the cost of an entry going
    through raft and being applied; a write pays its request cost and one entry. The figures
    are chosen so these sums equal the measured CPU per operation.
    """
    m = {name: read_json(os.path.join(args.measurements, f"{name}.json")) for name in
         ("read-eventual", "read-strong", "update", "insert")}
    disk = read_json(args.disk)
    server_sync = read_json(args.server_sync)["storage_write"]["sync"]
    loopback = read_json(args.loopback)
    for name, value in m.items():
        failed = sum(value["results"]["not_ok"].values())
        if failed > FAILED_SHARE_MAX * value["operations_total"]:
            sys.exit(f"calibrate.py profile: {name} had {failed} failed operations of {value['operations_total']} "
                     f"({value['results']['not_ok']}); a refused request costs far less than a served one, so its "
                     "CPU per operation would be wrong")
    cost = {name: value["server_cpu_us_per_op"] for name, value in m.items()}
    kib = {op: bytes_ / 1024 for op, bytes_ in BODY_BYTES.items()}
    request_per_kib = DEFAULT_REQUEST_PER_KIB_US
    apply_per_kib = DEFAULT_APPLY_PER_KIB_US
    get = cost["read-eventual"] - request_per_kib * kib["GetItem"]
    apply_entry = max(1.0, cost["read-strong"] - cost["read-eventual"])
    update = cost["update"] - apply_entry - (request_per_kib + apply_per_kib) * kib["UpdateItem"]
    put = cost["insert"] - apply_entry - (request_per_kib + apply_per_kib) * kib["PutItem"]
    # A write's share left after apply_entry_us can come out below zero when a strongly
    # consistent read costs more to push through the log than a write does; the simulator needs
    # non-negative figures, so each is kept at least OPERATION_US_MIN and the profile says so.
    clamped = [op for op, us in (("UpdateItem", update), ("PutItem", put), ("GetItem", get)) if us < OPERATION_US_MIN]
    get, update, put = (max(OPERATION_US_MIN, us) for us in (get, update, put))
    measured = {"GetItem": get, "UpdateItem": update, "PutItem": put}
    read_scale = get / DEFAULT_OPERATION_US["GetItem"]
    write_scale = (update / DEFAULT_OPERATION_US["UpdateItem"] + put / DEFAULT_OPERATION_US["PutItem"]) / 2
    operation_us = {}
    for op, default in DEFAULT_OPERATION_US.items():
        if op in measured:
            operation_us[op] = measured[op]
        elif op in READ_OPERATIONS:
            operation_us[op] = default * read_scale
        else:
            operation_us[op] = default * write_scale
    request_us = DEFAULT_REQUEST_US * (read_scale + write_scale) / 2

    def fmt(value):
        return f"{value:.1f}"

    def runs(name):
        r = m[name]
        return (f"{r['operations_total']} operations, {r['server_cpu_s']:.2f} s of server CPU over "
                f"{r['wall_s']:.1f} s ({r['server_cores']:.2f} cores), {cost[name]:.1f} us each; "
                f"others used {r['others_cores']:.2f} cores, load average {r['loadavg_before'][0]:.2f}")

    sync, write, read = server_sync, disk["write"], disk["read"]
    lines = [
        "# Squall simulator resource profile measured on this machine by scripts/calibrate.",
        f"# Measured {args.date} at commit {args.commit}; machine: {args.machine}.",
        "#",
        "# CPU: one squall-server as a one-node cluster (every write and strongly consistent read",
        "# through its raft log, as in a simulated node) on 127.0.0.1, pinned to "
        f"{args.cores} core(s) with taskset,",
        "# its data on this machine's disk; squall-load on the other core(s), closed loop with "
        f"{args.clients} clients",
        f"# ({args.records} YCSB records of 10 x 100 bytes). CPU per operation is the server's "
        "utime + stime",
        "# (/proc/PID/stat) over the run divided by the operations done:",
        f"# - YCSB-C, eventually consistent GetItem: {runs('read-eventual')}",
        f"# - YCSB-C, strongly consistent GetItem: {runs('read-strong')}",
        f"# - UpdateItem only: {runs('update')}",
        f"# - PutItem only (inserts): {runs('insert')}",
        "# The simulator charges operation_us (+ request_per_kib_us per KiB of body) where a request",
        "# arrives and apply_entry_us (+ apply_per_kib_us per KiB) per raft entry on each replica;",
        "# an eventual GetItem never enters the log, so:",
        "#   GetItem = eventual read; apply_entry_us = strong read - eventual read;",
        "#   UpdateItem, PutItem = their CPU - apply_entry_us - the per-KiB terms (bodies of about",
        f"#   {BODY_BYTES['GetItem']}, {BODY_BYTES['UpdateItem']} and {BODY_BYTES['PutItem']} bytes), "
        "so each sum equals what was measured.",
        "# The per-KiB figures are the defaults (not measured: one record size). Operations not",
        f"# measured are the defaults scaled: reads by GetItem's ratio ({read_scale:.2f}), writes by the",
        f"# mean of UpdateItem's and PutItem's ({write_scale:.2f}), request_us by the mean of the two.",
        "# The CPU per operation is measured at saturation, where raft batches many entries per",
        "# Ready; at low load a real node spends more per operation (wake-ups, smaller batches).",
        *([f"# Clamped to {OPERATION_US_MIN} us (the subtraction came out below it): {', '.join(clamped)}."]
          if clamped else []),
        "#",
        f"# Disk: sync is the server's own synced writes (its GET /metrics) under UpdateItem only at "
        f"{args.sync_rate:g} per second:",
        f"# {sync['count']} writes, median {sync['median_us']} us, p99 {sync['p99_us']} us, p99.9 {sync['p999_us']} us. "
        "The bare device, back to back,",
        f"# is faster ({disk['sync']['count']} appends of 4 KiB each followed by a timed fdatasync: median "
        f"{disk['sync']['median_us']} us, p99 {disk['sync']['p99_us']} us):",
        "# the server's sync adds RocksDB's work around the fsync, other groups' syncs sharing the log,",
        "# background flushes, and a disk idle between syncs (an isolated fsync is slower).",
        f"# write and read: {disk['write']['count']} timed 4 KiB appends without sync and as many timed 4 KiB preads",
        "# of pages in the page cache, in the server's data directory's filesystem (Python's timer costs "
        f"{disk['timer_overhead']['median_us']} us).",
        "# queue_depth, iops_max and bandwidth_mb_s are the defaults: not measured.",
        "#",
        "# Network: client to node is this machine's loopback, as the validation's load generator",
        f"# and server talk over it: one way {loopback['p10_us']}-{loopback['p90_us']} us (10th to 90th percentile of",
        f"# {loopback['count']} halved 64-byte TCP round trips on 127.0.0.1). Intra- and cross-zone latencies are",
        "# the defaults (not measured: one machine has no zones). For a plan, a profile's client",
        "# latency should be what the application's hosts see instead.",
        "",
        f'name = "{args.name}"',
        "",
        "[cpu]",
        f"cores = {args.cores}",
        f"request_us = {fmt(request_us)}",
        f"request_per_kib_us = {request_per_kib}",
        f"apply_entry_us = {fmt(apply_entry)}",
        f"apply_per_kib_us = {apply_per_kib}",
        "",
        "[cpu.operation_us]",
    ]
    lines += [f"{op} = {fmt(us)}" for op, us in operation_us.items()]
    lines += [
        "",
        "[disk]",
        "queue_depth = 32",
        "iops_max = 100000.0",
        "bandwidth_mb_s = 1000.0",
        f"read = {{ median_us = {read['median_us']:.1f}, p99_us = {max(read['p99_us'], read['median_us']):.1f} }}",
        f"write = {{ median_us = {write['median_us']:.1f}, p99_us = {max(write['p99_us'], write['median_us']):.1f} }}",
        f"sync = {{ median_us = {sync['median_us']:.1f}, p99_us = {max(sync['p99_us'], sync['median_us']):.1f} }}",
        "",
        "[network]",
        "intra_zone_us_min = 50",
        "intra_zone_us_max = 150",
        "cross_zone_us_min = 250",
        "cross_zone_us_max = 750",
        f"client_us_min = {max(1, int(round(loopback['p10_us'])))}",
        f"client_us_max = {max(1, int(round(loopback['p90_us'])))}",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    derived = {
        "cpu_us_per_operation_measured": cost,
        "apply_entry_us": apply_entry,
        "operation_us": operation_us,
        "request_us": request_us,
        "read_scale": read_scale,
        "write_scale": write_scale,
    }
    print(json.dumps(derived, indent=2))


def error_pct(simulated, real):
    if simulated is None or real in (None, 0):
        return None
    return round((simulated - real) / real * 100, 1)


def saturation(points):
    """The highest served rate of an open-loop sweep, and the offered rate it came at."""
    best = max(points, key=lambda p: p["served_per_s"])
    return best["served_per_s"], best["offered_per_s"]


def cmd_validate(args):
    """Real against simulated: saturation throughput, p50 and p99 at the moderate rate.

    p50 and p99 count from each request's turn in the open-loop schedule (corrected for
    coordinated omission); service_p50 and service_p99 from its sending to its answer. The
    difference is the load generator's own lag behind its schedule, which its timer sets on each
    side (tokio's wheel of one-millisecond ticks for real, madsim's one-millisecond least sleep
    in the simulation) rather than the server; the service latencies compare the servers.
    """
    real = read_json(args.real)
    sim = read_json(args.sim)
    real_sat, real_sat_at = saturation(real["sweep"])
    sim_sat, sim_sat_at = saturation(sim["sweep"])
    real_mod = real["moderate"]["results"]
    sim_mod = sim["moderate"]["results"]
    comparison = {
        "saturation_ops_per_s": {
            "real": round(real_sat, 1),
            "simulated": round(sim_sat, 1),
            "error_pct": error_pct(sim_sat, real_sat),
            "real_offered_at": real_sat_at,
            "simulated_offered_at": sim_sat_at,
        },
        "p50_ms": {
            "real": real_mod["p50_ms"],
            "simulated": sim_mod["p50_ms"],
            "error_pct": error_pct(sim_mod["p50_ms"], real_mod["p50_ms"]),
        },
        "p99_ms": {
            "real": real_mod["p99_ms"],
            "simulated": sim_mod["p99_ms"],
            "error_pct": error_pct(sim_mod["p99_ms"], real_mod["p99_ms"]),
        },
    }
    for key in ("service_p50_ms", "service_p99_ms"):
        comparison[key] = {
            "real": real_mod.get(key),
            "simulated": sim_mod.get(key),
            "error_pct": error_pct(sim_mod.get(key), real_mod.get(key)),
        }
    per_op = {}
    for name in sorted(set(real_mod["operations"]) | set(sim_mod["operations"])):
        r = real_mod["operations"].get(name, {})
        s = sim_mod["operations"].get(name, {})
        per_op[name] = {
            q: {"real": r.get(q), "simulated": s.get(q), "error_pct": error_pct(s.get(q), r.get(q))}
            for q in ("p50_ms", "p99_ms", "service_p50_ms", "service_p99_ms")
        }
    comparison["moderate_rate_by_operation"] = per_op
    extra = read_json(args.extra) if args.extra else {}
    result = {
        "what": "YCSB-B on one squall-server (a one-node cluster) against the simulator's one-node cluster "
                "with the calibrated profile",
        "commit": args.commit,
        "date": args.date,
        "machine": args.machine,
        "profile": args.profile,
        "settings": extra.get("settings", {}),
        "comparison": comparison,
        "within_20_pct": {k: (v["error_pct"] is not None and abs(v["error_pct"]) <= 20)
                          for k, v in comparison.items() if isinstance(v, dict) and "error_pct" in v},
        "real": real,
        "simulated": sim,
    }
    result.update({k: v for k, v in extra.items() if k != "settings"})
    write_json(args.out, result)
    print(json.dumps(comparison, indent=2))


def cmd_collect(args):
    """Gathers sweep points and the moderate run of one side into one JSON file."""
    sweep = []
    for path in args.sweep:
        value = read_json(path)
        sweep.append({
            "offered_per_s": value["offered_per_s"],
            "served_per_s": round(value["results"]["ok_per_s"], 1),
            "p50_ms": value["results"]["p50_ms"],
            "p99_ms": value["results"]["p99_ms"],
            "not_ok": value["results"]["not_ok"],
            **{k: value[k] for k in ("server_cores", "others_cores", "loadavg_before", "utilisation") if k in value},
        })
    sweep.sort(key=lambda p: p["offered_per_s"])
    result = {"sweep": sweep, "moderate": read_json(args.moderate)}
    if args.closed:
        result["closed_loop"] = [read_json(p) for p in args.closed]
    write_json(args.out, result)


def cmd_sim_point(args):
    """One simulated run's results in the shape of a real `load` measurement."""
    summary = read_json(os.path.join(args.report, "summary.json"))
    chaos = summary.get("simulation", {}).get("chaos", {})
    nodes = chaos.get("nodes", [])
    result = {
        "label": args.label,
        "offered_per_s": args.rate,
        "results": result_stats(summary, args.report),
        "utilisation": {
            "cpu": [n.get("cpu_utilisation") for n in nodes],
            "disk": [n.get("disk_utilisation") for n in nodes],
        },
        "wall_s": args.wall,
    }
    write_json(args.out, result)
    r = result["results"]
    print(f"{args.label}: offered {args.rate}/s, served {r['ok_per_s']:.0f}/s, p50 {r['p50_ms']} ms, "
          f"p99 {r['p99_ms']} ms, cpu {result['utilisation']['cpu']}")


def cmd_set(args):
    """Adds fields to a JSON file (offered rate of a real point, for instance)."""
    value = read_json(args.file)
    for pair in args.pairs:
        key, raw = pair.split("=", 1)
        try:
            value[key] = json.loads(raw)
        except json.JSONDecodeError:
            value[key] = raw
    write_json(args.file, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("disk")
    p.add_argument("dir")
    p.add_argument("out")
    p.add_argument("--syncs", type=int, default=2000)
    p.add_argument("--writes", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.set_defaults(func=cmd_disk)

    p = sub.add_parser("loopback")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.set_defaults(func=cmd_loopback)

    p = sub.add_parser("busy")
    p.add_argument("seconds", type=float)
    p.set_defaults(func=cmd_busy)

    p = sub.add_parser("load")
    p.add_argument("out")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("metrics")
    p.add_argument("endpoint")
    p.add_argument("out")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("profile")
    p.add_argument("--measurements", required=True)
    p.add_argument("--disk", required=True)
    p.add_argument("--server-sync", required=True)
    p.add_argument("--sync-rate", type=float, required=True)
    p.add_argument("--loopback", required=True)
    p.add_argument("--cores", type=int, required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--name", default="calibrated")
    p.add_argument("--commit", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("sim-point")
    p.add_argument("report")
    p.add_argument("out")
    p.add_argument("--label", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--wall", type=float, default=None)
    p.set_defaults(func=cmd_sim_point)

    p = sub.add_parser("collect")
    p.add_argument("--sweep", nargs="+", required=True)
    p.add_argument("--moderate", required=True)
    p.add_argument("--closed", nargs="*", default=[])
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("validate")
    p.add_argument("--real", required=True)
    p.add_argument("--sim", required=True)
    p.add_argument("--extra")
    p.add_argument("--profile", required=True)
    p.add_argument("--commit", required=True)
    p.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    p.add_argument("--machine", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("set")
    p.add_argument("file")
    p.add_argument("pairs", nargs="+")
    p.set_defaults(func=cmd_set)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
