#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Soak benchmark of `ssm-doctor watch` in the lab: memory over a long run, CPU per sample and
per check, extrapolated to the default intervals.

  sudo python3 bench/watch_soak.py --binary build/ssm-doctor [--standin PATH]
                                   [--scenario article] [--mixed 300] [--checks 60]
                                   [--samples 60] [--every 5]

One lab (tests/lab, network namespaces, needs root), three runs of `ssm-doctor watch` inside
its instance, one after the other:

  mixed    watch.sample 0.1 s, watch.interval 2 s for --mixed seconds: 30 times the default
           check rate and 100 times the default sample rate. RSS (VmRSS) and its peak (VmHWM)
           are read every --every seconds; the growth is a least-squares slope over the run
           after its first 30 s.
  checks   watch.interval 2 s, watch.sample 3600 s (one sample after the first check): CPU per
           check.
  samples  watch.sample 0.1 s, watch.interval 3600 s (one check at the start): CPU per sample.

CPU is utime + stime of ssm-doctor (all its threads) from /proc/<pid>/stat, plus cutime +
cstime: the children it waited for (the agent's `-version` each check). Each run ends with
SIGTERM, and the time until the process is gone is reported too. The targets (issue 4): under
10 MiB RSS, under 0.1 % of one core at the default intervals (10 s samples, 300 s checks).

Exit status: 0 targets met, 1 a target missed or the watch misbehaved, 77 cannot run here.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.join(os.path.dirname(HERE), "tests", "lab")
sys.path.insert(0, LAB_DIR)
sys.dont_write_bytecode = True  # keep the source tree clean when run from it

import lab as lab_cli  # noqa: E402  (tests/lab/lab.py: preflight, signals, defaults)
from labkit import LabError  # noqa: E402
from labkit.lab import Lab, _die_with_parent  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RSS_TARGET_KIB = 10 * 1024
CPU_TARGET_PERCENT = 0.1
DEFAULT_SAMPLE_S = 10.0
DEFAULT_INTERVAL_S = 300.0
STOP_TARGET_S = 1.0


def read_status(pid):
    """VmRSS, VmHWM, RssAnon (heap, stacks) and RssFile (mapped binaries) in KiB."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0])
    return values


def rss_by_mapping(pid):
    """RSS in KiB per mapped file (anonymous mappings, heap and stacks as one "[anonymous]")."""
    totals = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                path = fields[5] if len(fields) > 5 else ""
                name = os.path.basename(path) if path.startswith("/") else "[anonymous]"
            elif fields[0] == "Rss:":
                totals[name] = totals.get(name, 0) + int(fields[1])
    return sorted(totals.items(), key=lambda kv: -kv[1])


def read_cpu(pid):
    """(own seconds, waited-for children's seconds) from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    # After "pid (comm) ": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    utime, stime, cutime, cstime = (int(fields[i - 3]) for i in (14, 15, 16, 17))
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def child_named(ppid, name, timeout=10.0):
    """The pid of ppid's child called `name` (nsenter forks ssm-doctor into the PID ns)."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    text = f.read()
            except OSError:
                continue
            comm = text[text.index("(") + 1:text.rindex(")")]
            parent = int(text[text.rindex(")") + 2:].split()[1])
            if parent == ppid and comm == name:
                return int(entry)
        time.sleep(0.05)
    raise LabError("no %s process under pid %d after %.0f s" % (name, ppid, timeout))


def slope_kib_per_hour(points):
    """Least-squares slope of (seconds, KiB) points, in KiB per hour."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600.0


def run_watch(lab, binary, name, sample_s, interval_s, seconds, every, ship=False):
    """Runs `ssm-doctor watch` in the lab's instance for `seconds`; returns the measurements.

    ship: native shipping on, to the lab's ssm endpoint, which answers every PutLogEvents with
    an AWS error: the daemon then does TLS and SigV4 itself, as it would with CloudWatch Logs,
    and keeps its events in the spool and retries."""
    with open(lab.config_path) as f:
        base = f.read()
    config = os.path.join(lab.dir, "watch-%s.yaml" % name)
    with open(config, "w") as f:
        f.write(base + "watch:\n  interval: %s\n  sample: %s\n  summary: 3600\n"
                % (interval_s, sample_s))
        if ship:
            f.write("cloudwatch:\n  log_group: ssm-doctor-soak\n  endpoint: https://%s\n"
                    "  spool_dir: %s\n" % (lab.host_name("ssm"),
                                           os.path.join(lab.dir, "spool-%s" % name)))
    log_path = os.path.join(lab.dir, "watch-%s.log" % name)
    log = open(log_path, "w")
    argv = lab.instance_command([binary, "watch", "--config", config, "--log-level", "info"])
    nsenter = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log,
                               preexec_fn=_die_with_parent)
    try:
        pid = child_named(nsenter.pid, "ssm-doctor")
        started = time.monotonic()
        rss = []
        anon = []
        peak = 0
        last = {}
        while True:
            elapsed = time.monotonic() - started
            status = read_status(pid)
            rss.append((elapsed, status["VmRSS"]))
            anon.append((elapsed, status.get("RssAnon", 0)))
            peak = max(peak, status["VmHWM"])
            last = status
            if elapsed >= seconds:
                mappings = rss_by_mapping(pid)
                break
            time.sleep(min(every, seconds - elapsed))
        own, children = read_cpu(pid)
        wall = time.monotonic() - started
        asked = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        nsenter.wait(timeout=10)
        stop_s = time.monotonic() - asked
    finally:
        if nsenter.poll() is None:
            nsenter.kill()
            nsenter.wait()
        log.close()

    with open(log_path) as f:
        text = f.read()
    stopped = re.search(r"event=watch_stopped .*checks=(\d+) samples=(\d+)", text)
    if not stopped:
        raise LabError("%s: no watch_stopped line; the log:\n%s" % (name, text[-2000:]))
    errors = [line for line in text.splitlines() if line.startswith("level=error")]
    return {
        "name": name, "seconds": wall, "checks": int(stopped.group(1)),
        "samples": int(stopped.group(2)), "cpu_s": own, "children_cpu_s": children,
        "rss": rss, "anon": anon, "peak_kib": peak, "last_status": last,
        "mappings": mappings, "stop_s": stop_s, "exit": nsenter.returncode,
        "errors": errors, "log": log_path,
        "lines": {event: len(re.findall(r"event=%s\b" % event, text))
                  for event in ("verdict_changed", "finding_raised", "session_opened",
                                "session_closed", "summary")},
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True, help="the ssm-doctor executable")
    parser.add_argument("--standin", help="the agent stand-in (target lab_agent_standin)")
    parser.add_argument("--scenario", default="article")
    parser.add_argument("--mixed", type=float, default=300, help="seconds of the mixed run")
    parser.add_argument("--checks", type=float, default=60, help="seconds of the checks run")
    parser.add_argument("--samples", type=float, default=60, help="seconds of the samples run")
    parser.add_argument("--every", type=float, default=5, help="seconds between RSS readings")
    parser.add_argument("--ship", type=float, default=0,
                        help="seconds of a fourth run like mixed, with native shipping to the "
                             "lab's ssm endpoint (it refuses every batch): RSS only")
    args = parser.parse_args(argv)

    refusal = lab_cli.preflight()
    if refusal is not None:
        return refusal
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lab_cli.on_signal)
    binary = os.path.abspath(args.binary)
    standin = args.standin or lab_cli.default_standin(binary)
    scenario = lab_cli.scenario_named(args.scenario)

    with Lab(scenario, standin=standin) as lab:
        mixed = run_watch(lab, binary, "mixed", 0.1, 2, args.mixed, args.every)
        checks = run_watch(lab, binary, "checks", 3600, 2, args.checks, args.every)
        samples = run_watch(lab, binary, "samples", 0.1, 3600, args.samples, args.every)
        shipping = (run_watch(lab, binary, "shipping", 0.1, 2, args.ship, args.every, ship=True)
                    if args.ship > 0 else None)

    # Per check: the checks run has one sample; per sample: the samples run has one check.
    # The idle loop (timers, nothing else) is included in both and is negligible.
    per_check = (checks["cpu_s"] + checks["children_cpu_s"]) / max(checks["checks"], 1)
    per_sample = max(samples["cpu_s"] + samples["children_cpu_s"] - per_check, 0.0) / max(
        samples["samples"], 1)
    default_percent = (per_sample / DEFAULT_SAMPLE_S + per_check / DEFAULT_INTERVAL_S) * 100
    mixed_percent = (mixed["cpu_s"] + mixed["children_cpu_s"]) / mixed["seconds"] * 100
    predicted_mixed = (per_sample / 0.1 + per_check / 2) * 100

    warm = [(t, v) for t, v in mixed["rss"] if t >= 30] or mixed["rss"]
    growth = slope_kib_per_hour(warm)
    warm_anon = [(t, v) for t, v in mixed["anon"] if t >= 30] or mixed["anon"]
    anon_growth = slope_kib_per_hour(warm_anon)
    rss_start = warm[0][1]
    rss_end = mixed["rss"][-1][1]

    print("scenario %s, %s, %d CPUs, clock ticks %d/s"
          % (args.scenario, os.uname().release, os.cpu_count(), CLOCK_TICKS))
    print()
    print("| run | seconds | checks | samples | CPU s (own + children) | % of one core "
          "| stop after SIGTERM |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in (mixed, checks, samples):
        print("| %s | %.0f | %d | %d | %.2f + %.2f | %.3f | %.0f ms |"
              % (r["name"], r["seconds"], r["checks"], r["samples"], r["cpu_s"],
                 r["children_cpu_s"], (r["cpu_s"] + r["children_cpu_s"]) / r["seconds"] * 100,
                 r["stop_s"] * 1000))
    print()
    print("| figure | value |")
    print("| --- | ---: |")
    print("| CPU per check (with the agent's -version) | %.1f ms |" % (per_check * 1000))
    print("| CPU per sample | %.3f ms |" % (per_sample * 1000))
    print("| mixed run: measured / predicted from the two above | %.3f %% / %.3f %% |"
          % (mixed_percent, predicted_mixed))
    print("| at the defaults (10 s samples, 300 s checks) | %.4f %% of one core |"
          % default_percent)
    print("| RSS after 30 s / at the end / peak (VmHWM) | %.1f / %.1f / %.1f MiB |"
          % (rss_start / 1024, rss_end / 1024, mixed["peak_kib"] / 1024))
    print("| RSS at the end: anonymous (heap, stacks) / file-backed (binary, libraries) "
          "| %.1f / %.1f MiB |" % (mixed["last_status"].get("RssAnon", 0) / 1024,
                                   mixed["last_status"].get("RssFile", 0) / 1024))
    print("| anonymous RSS after 30 s / at the end | %.2f / %.2f MiB |"
          % (warm_anon[0][1] / 1024, mixed["anon"][-1][1] / 1024))
    print("| slope after 30 s, RSS / anonymous RSS (mixed run) | %+.0f / %+.0f KiB/hour |"
          % (growth, anon_growth))
    print("| lines in the mixed run | %s |"
          % ", ".join("%s %d" % kv for kv in mixed["lines"].items()))
    print()
    print("RSS at the end of the mixed run, by mapping (KiB): "
          + ", ".join("%s %d" % kv for kv in mixed["mappings"] if kv[1] >= 64))
    if shipping:
        print()
        print("with native shipping (%.0f s, %d checks): RSS at the end / peak %.1f / %.1f MiB; "
              "by mapping (KiB): %s" % (
                  shipping["seconds"], shipping["checks"], shipping["rss"][-1][1] / 1024,
                  shipping["peak_kib"] / 1024,
                  ", ".join("%s %d" % kv for kv in shipping["mappings"] if kv[1] >= 64)))

    problems = []
    for r in (mixed, checks, samples):
        if r["exit"] != 0:
            problems.append("%s: exit status %s" % (r["name"], r["exit"]))
        if r["stop_s"] > STOP_TARGET_S:
            problems.append("%s: stopped %.2f s after SIGTERM" % (r["name"], r["stop_s"]))
        if r["errors"]:
            problems.append("%s: error lines: %s" % (r["name"], r["errors"][:3]))
    if mixed["peak_kib"] > RSS_TARGET_KIB:
        problems.append("peak RSS %.1f MiB > 10 MiB" % (mixed["peak_kib"] / 1024))
    if default_percent > CPU_TARGET_PERCENT:
        problems.append("%.3f %% of one core at the defaults > 0.1 %%" % default_percent)
    for p in problems:
        print("MISSED: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LabError as e:
        print("watch_soak: %s" % e, file=sys.stderr)
        sys.exit(1)
