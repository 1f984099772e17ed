#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmarks of `ssm-doctor check` in the lab: parallel probes, the deadline, cost of a check.

  sudo python3 bench/lab_bench.py --binary build/ssm-doctor [--standin PATH] [--runs 10]
                                  [--cost-runs 20] [--timeout 2] [--only parallel,deadline,cost]
                                  [--markdown]

Three measurements, each in its own lab (tests/lab, network namespaces, needs root):

  parallel  scenario slow-all: every endpoint answers its TLS handshake after 300 ms. Per
            repetition, one check of all seven endpoints and one check per endpoint alone, all
            with --region (the region is known at once, so IMDS runs beside the probes and
            not before them). Target: whole check <= 1.3 x the slowest single-endpoint check.
  deadline  scenario all-drop: every endpoint and IMDS drop packets, check --timeout T.
            (a) region in the configuration: IMDS runs beside the probes; target <= 1.1 T.
            (b) region only in the agent's configuration: the probes wait for IMDS to give up
            (imds.timeout), so the bound is imds.timeout + T; target <= 1.1 (imds.timeout + T).
  cost      scenario upgraded-ec2messages-unused (ssm, ssmmessages, ec2messages all healthy),
            the lab's configuration as is (region from IMDS): wall time from process start to
            exit (target < 50 ms) and peak RSS (target < 15 MiB), after two warm-up runs.

Every check runs inside the lab's instance (its network, PID and mount namespaces) under a small
wrapper (`_measure`, this file) that has `setsid --fork` start ssm-doctor, reaps it with wait4()
and records the wall time and the rusage: the times cover ssm-doctor from exec to exit (plus
about 1 ms for setsid), not nsenter or Python start-up. ru_maxrss is the peak of ssm-doctor and
of the children it waited for (the agent's `-version`, package managers), as /usr/bin/time
reports it; the cost section measures those children alone too, and the other parts of a
check, to show where the time and the peak go.

Exit status: 0 every target met, 1 a target missed or a check misbehaved, 77 cannot run here
(not root, a tool missing; as the lab).
"""

import argparse
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.join(os.path.dirname(HERE), "tests", "lab")
sys.path.insert(0, LAB_DIR)
sys.dont_write_bytecode = True  # keep the source tree clean when run from it

import lab as lab_cli  # noqa: E402  (tests/lab/lab.py: preflight, signals, defaults)
from labkit import LabError, scenarios  # noqa: E402

ALL_SERVICES = scenarios.ALL_SERVICES
REGION = "us-east-1"
HEALTHY_SCENARIO = "upgraded-ec2messages-unused"
PARALLEL_TARGET = 1.3
DEADLINE_SLACK = 1.1
WALL_TARGET_MS = 50.0
RSS_TARGET_KIB = 15 * 1024
RUN_TIMEOUT_S = 60
PR_SET_CHILD_SUBREAPER = 36


# --- inside the instance -------------------------------------------------------------------

def measure_main(result_path, argv):
    """Runs argv, waits for it and writes its wall time and rusage as JSON to result_path.

    ru_maxrss is not reset by exec: a process keeps the peak RSS of the image it replaced. Had
    this Python process started argv itself (posix_spawn shares its memory until the exec),
    every figure would be at least Python's own ~14 MiB. So `setsid -f` (a few hundred KiB)
    forks argv and exits at once; this process, a child subreaper, inherits the orphan and
    reaps it with wait4(), getting its own rusage. setsid's exec and fork add about 1 ms to
    the wall time.
    """
    setsid = shutil.which("setsid") or "/usr/bin/setsid"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    started = time.monotonic_ns()
    starter = os.posix_spawn(setsid, [setsid, "--fork"] + argv, os.environ)
    _, status, _ = os.wait4(starter, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        print("_measure: %s --fork exited with %s" % (setsid, status), file=sys.stderr)
        return 1
    _, status, usage = os.wait4(-1, 0)  # the orphan: argv
    wall_ns = time.monotonic_ns() - started
    with open(result_path, "w") as f:
        json.dump({"wall_ms": wall_ns / 1e6, "maxrss_kib": usage.ru_maxrss,
                   "user_ms": usage.ru_utime * 1e3, "sys_ms": usage.ru_stime * 1e3,
                   "exit": os.waitstatus_to_exitcode(status)}, f)
    return 0


# --- running checks ------------------------------------------------------------------------

def _die_with_parent():
    """In a child before exec: be killed when the benchmark dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Run:
    """One measured process: wall time and rusage from the wrapper, and its JSON report."""

    def __init__(self, measured, report, stderr):
        self.wall_ms = measured["wall_ms"]
        self.maxrss_kib = measured["maxrss_kib"]
        self.cpu_ms = measured["user_ms"] + measured["sys_ms"]
        self.exit = measured["exit"]
        self.report = report
        self.stderr = stderr

    def elapsed_ms(self):
        return self.report["elapsed_ms"]

    def endpoint(self, service):
        for e in self.report["endpoints"]:
            if e["service"] == service:
                return e
        raise BenchError("the report has no endpoint %s" % service)


class BenchError(Exception):
    pass


def measure(lab, argv, parse_json=True):
    """Runs argv inside the lab's instance under the wrapper; a Run."""
    result_path = os.path.join(lab.dir, "bench-measure.json")
    if os.path.exists(result_path):
        os.unlink(result_path)
    inner = [sys.executable, os.path.abspath(__file__), "_measure", result_path] + argv
    try:
        done = subprocess.run(lab.instance_command(inner), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S,
                              preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        raise BenchError("%s did not end within %d s" % (" ".join(argv), RUN_TIMEOUT_S))
    if done.returncode != 0 or not os.path.exists(result_path):
        raise BenchError("the wrapper failed (%d) running %s: %s"
                         % (done.returncode, " ".join(argv), done.stderr.strip()))
    with open(result_path) as f:
        measured = json.load(f)
    report = None
    if parse_json:
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError as e:
            raise BenchError("%s: the output is not JSON (%s); exit %d; stderr:\n%s"
                             % (" ".join(argv), e, measured["exit"], done.stderr))
    return Run(measured, report, done.stderr)


def check(lab, binary, config, extra=()):
    return measure(lab, [binary, "check", "--config", config, "--output", "json",
                         "--log-level", "warn"] + list(extra))


def config_variant(lab, name, top=None, sections=None, drop_top=()):
    """Writes a copy of the lab's ssm-doctor.yaml with keys changed; returns its path.

    The lab writes a two-level file (top-level `key: value` and `section:` with indented
    `key: value` lines); top sets or replaces top-level keys, sections sets keys inside
    sections, drop_top removes top-level keys.
    """
    entries = []  # [key, value or None, {subkey: value}]
    with open(lab.config_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, _, value = line.strip().partition(":")
            if line.startswith(" "):
                if not entries or entries[-1][1] is not None:
                    raise BenchError("%s: unexpected indented line %r" % (lab.config_path, line))
                entries[-1][2][key] = value.strip()
            else:
                entries.append([key, value.strip() or None, {}])
    entries = [e for e in entries if e[0] not in drop_top]
    for key, value in (top or {}).items():
        found = [e for e in entries if e[0] == key]
        if found:
            found[0][1] = value
        else:
            entries.insert(0, [key, value, {}])
    for section, values in (sections or {}).items():
        found = [e for e in entries if e[0] == section]
        if not found:
            entries.append([section, None, {}])
            found = entries[-1:]
        found[0][2].update(values)
    lines = ["# lab_bench.py variant %s of %s" % (name, lab.config_path)]
    for key, value, sub in entries:
        if value is not None:
            lines.append("%s: %s" % (key, value))
        else:
            lines.append("%s:" % key)
            lines += ["  %s: %s" % (k, v) for k, v in sub.items()]
    path = os.path.join(lab.dir, "bench-%s.yaml" % name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def open_lab(name, standin):
    from labkit.lab import Lab
    return Lab(scenarios.BY_NAME[name], standin=standin)


def expect_reachable(run, services, what):
    down = [s for s in services if not run.endpoint(s)["reachable"]]
    if down:
        raise BenchError("%s: %s not reachable (%s); the lab or the check is broken"
                         % (what, ", ".join(down),
                            "; ".join(json.dumps(run.endpoint(s)["failure"]) for s in down)))


def probe_ms(endpoint):
    """The endpoint's own probe time from the report: DNS, then the first address's phases."""
    t = endpoint["timings_ms"]
    return sum(t[k] or 0 for k in ("dns", "connect", "proxy", "tls"))


# --- statistics and printing ----------------------------------------------------------------

def med(values):
    return statistics.median(values)


def fmt(value, digits=0):
    return ("%%.%df" % digits) % value


class Table:
    """A table printed aligned for the terminal and as Markdown for docs/benchmarks.md."""

    def __init__(self, title, header):
        self.title = title
        self.header = header
        self.rows = []

    def add(self, *cells):
        self.rows.append([str(c) for c in cells])

    def text(self):
        widths = [max(len(r[i]) for r in [self.header] + self.rows)
                  for i in range(len(self.header))]
        out = [self.title]
        for r in [self.header] + self.rows:
            out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        return "\n".join(out)

    def markdown(self):
        out = ["**%s**" % self.title, "", "| " + " | ".join(self.header) + " |",
               "|" + "|".join("---" for _ in self.header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)


class Outcome:
    def __init__(self):
        self.tables = []
        self.verdicts = []  # (target text, measured text, met)

    def target(self, text, measured, met):
        self.verdicts.append((text, measured, met))


# --- the three benchmarks -------------------------------------------------------------------

def bench_parallel(args, binary, standin, out):
    with open_lab("slow-all", standin) as lab:
        whole_cfg = config_variant(lab, "all", sections={
            "probe": {"endpoints": "[%s]" % ", ".join(ALL_SERVICES)}})
        single_cfg = {s: config_variant(lab, s, sections={"probe": {"endpoints": "[%s]" % s}})
                      for s in ALL_SERVICES}
        region = ["--region", REGION]
        reps = []
        for i in range(args.runs):
            whole = check(lab, binary, whole_cfg, region)
            expect_reachable(whole, ALL_SERVICES, "slow-all, all seven")
            singles = {}
            for s in ALL_SERVICES:
                singles[s] = check(lab, binary, single_cfg[s], region)
                expect_reachable(singles[s], [s], "slow-all, %s alone" % s)
            reps.append((whole, singles))
            print("  parallel %d/%d: whole %.0f ms, singles %s ms" % (
                i + 1, args.runs, whole.wall_ms,
                " ".join("%.0f" % singles[s].wall_ms for s in ALL_SERVICES)), file=sys.stderr)

    def ratios(measure_of):
        vs_slowest, vs_sum, rows = [], [], []
        for whole, singles in reps:
            values = [measure_of(singles[s], s) for s in ALL_SERVICES]
            w = measure_of(whole, None)
            vs_slowest.append(w / max(values))
            vs_sum.append(w / sum(values))
            rows.append((w, max(values), sum(values)))
        return vs_slowest, vs_sum, rows

    t = Table("Parallelism: slow-all (7 endpoints, each handshake after 300 ms), --region %s, "
              "%d repetitions" % (REGION, args.runs),
              ["measure", "whole check (median / max)", "slowest single (median / max)",
               "sum of singles (median)", "whole / slowest (median / max)",
               "whole / sum (median / max)"])
    kinds = [
        ("process wall time, ms", lambda r, s: r.wall_ms),
        ("report elapsed_ms", lambda r, s: r.elapsed_ms()),
    ]
    primary = None
    for label, fn in kinds:
        vs_slowest, vs_sum, rows = ratios(fn)
        if primary is None:
            primary = vs_slowest
        t.add(label, "%s / %s" % (fmt(med([r[0] for r in rows])), fmt(max(r[0] for r in rows))),
              "%s / %s" % (fmt(med([r[1] for r in rows])), fmt(max(r[1] for r in rows))),
              fmt(med([r[2] for r in rows])),
              "%s / %s" % (fmt(med(vs_slowest), 3), fmt(max(vs_slowest), 3)),
              "%s / %s" % (fmt(med(vs_sum), 3), fmt(max(vs_sum), 3)))
    # The strictest reading: the whole check, process start to exit, against the slowest
    # endpoint's own probe time (DNS + connect + TLS) when probed alone.
    strict = [whole.wall_ms / max(probe_ms(singles[s].endpoint(s)) for s in ALL_SERVICES)
              for whole, singles in reps]
    t.add("whole wall / slowest probe's own dns+connect+tls alone", "", "", "",
          "%s / %s" % (fmt(med(strict), 3), fmt(max(strict), 3)), "")
    out.tables.append(t)

    per = Table("Per endpoint probe time (dns + connect + tls from the report), ms, median",
                ["service", "in the whole check", "alone"])
    for s in ALL_SERVICES:
        per.add(s, fmt(med([probe_ms(w.endpoint(s)) for w, _ in reps])),
                fmt(med([probe_ms(singles[s].endpoint(s)) for _, singles in reps])))
    out.tables.append(per)

    out.target("parallelism: whole check <= %.1f x slowest single check (every repetition)"
               % PARALLEL_TARGET, "max %.3f, median %.3f" % (max(primary), med(primary)),
               max(primary) <= PARALLEL_TARGET)


def bench_deadline(args, binary, standin, out):
    timeout = args.timeout
    t = Table("Deadline: all-drop (every endpoint and IMDS drop packets), check --timeout %g, "
              "imds.timeout 1 s" % timeout,
              ["variant", "runs", "bound", "wall, s (median / max)",
               "report elapsed, s (median / max)", "target", "met"])
    with open_lab("all-drop", standin) as lab:
        imds_timeout = 1.0  # what the lab writes as imds.timeout
        agent_cfg = os.path.join(lab.dir, "bench-agent-region.json")
        with open(agent_cfg, "w") as f:
            json.dump({"Agent": {"Region": REGION}}, f)
        variants = [
            ("(a) region in the configuration: IMDS beside the probes",
             config_variant(lab, "deadline-a", top={"region": REGION}),
             timeout, args.deadline_runs, "config"),
            ("(b) region from the agent's Agent.Region: probes after IMDS gives up",
             config_variant(lab, "deadline-b", drop_top=("region",),
                            sections={"agent": {"config": agent_cfg}}),
             imds_timeout + timeout, max(1, args.deadline_runs - 2), "agent_config"),
        ]
        for label, cfg, bound, runs, source in variants:
            results = []
            for i in range(runs):
                r = check(lab, binary, cfg, ["--timeout", "%g" % timeout])
                if r.report.get("region_source") != source:
                    raise BenchError("deadline %s: region_source %r, expected %r"
                                     % (label, r.report.get("region_source"), source))
                # Every endpoint probed and cut by the deadline: else the check ended early
                # for another reason and says nothing about the deadline.
                odd = [e["service"] for e in r.report["endpoints"]
                       if e["reachable"] or not e["probed"]
                       or (e["failure"] or {}).get("reason") != "timeout"]
                if odd or not r.report["endpoints"]:
                    raise BenchError("deadline %s: endpoints not probed to a timeout: %s"
                                     % (label, ", ".join(odd) or "none probed"))
                results.append(r)
                print("  deadline %s %d/%d: %.0f ms" % (label[:3], i + 1, runs, r.wall_ms),
                      file=sys.stderr)
            walls = [r.wall_ms / 1000 for r in results]
            elapsed = [r.elapsed_ms() / 1000 for r in results]
            limit = bound * DEADLINE_SLACK
            met = max(walls) <= limit
            t.add(label, runs, "%g s" % bound, "%.3f / %.3f" % (med(walls), max(walls)),
                  "%.3f / %.3f" % (med(elapsed), max(elapsed)), "<= %.2f s" % limit,
                  "yes" if met else "NO")
            out.target("deadline %s: wall <= %.2f s" % (label[:3], limit),
                       "max %.3f s" % max(walls), met)
    out.tables.append(t)


def cost_components(lab, binary, runs=10):
    """What a check runs besides its network probes, each measured alone in the instance.

    The check's local work runs these one after another on one thread, beside the probes (see
    docs/architecture.md); their sum is a floor for that thread, and the start-up floor is what
    any ssm-doctor process costs.
    """
    agent_binary = os.path.join(lab.dir, "agent", "bin", "amazon-ssm-agent")
    package = "amazon-ssm-agent"
    parts = [("start-up and exit floor: ssm-doctor --version", [binary, "--version"]),
             ("the agent's version: amazon-ssm-agent -version (the stand-in)",
              [agent_binary, "-version"])]
    rpm = shutil.which("rpm")
    if rpm:
        parts.append(("install method: rpm -q", [rpm, "-q", "--qf", "%{VERSION}\n", package]))
    dpkg = shutil.which("dpkg-query")
    if dpkg:
        parts.append(("install method: dpkg-query -W",
                      [dpkg, "-W", "-f", "${db:Status-Status} ${Version}", package]))
    snap = shutil.which("snap")
    if snap:
        parts.append(("install method: snap list", [snap, "list", package]))
    parts.append(("socket table: cat /proc/net/tcp /proc/net/tcp6 (the kernel's walk)",
                  [shutil.which("cat") or "/bin/cat", "/proc/net/tcp", "/proc/net/tcp6"]))
    t = Table("Where a healthy check's time goes: its parts alone in the instance, %d runs each"
              % runs, ["part", "wall, ms (min / median / max)", "CPU user+sys, ms (median)",
                       "peak RSS, MiB (max)"])
    for label, argv in parts:
        results = [measure(lab, argv, parse_json=False) for _ in range(runs)]
        walls = [r.wall_ms for r in results]
        t.add(label, "%.1f / %.1f / %.1f" % (min(walls), med(walls), max(walls)),
              fmt(med([r.cpu_ms for r in results]), 1),
              "%.2f" % (max(r.maxrss_kib for r in results) / 1024))
    return t


def bench_cost(args, binary, standin, out):
    t = Table("Cost of one check: %s (ssm, ssmmessages, ec2messages healthy), %d runs after "
              "2 warm-up runs" % (HEALTHY_SCENARIO, args.cost_runs),
              ["variant", "wall, ms (min / median / max)", "report elapsed_ms (median / max)",
               "CPU user+sys, ms (median)", "peak RSS, MiB (median / max)"])
    with open_lab(HEALTHY_SCENARIO, standin) as lab:
        variants = [("region from IMDS (the lab's configuration as is)", []),
                    ("--region %s (IMDS beside the probes)" % REGION, ["--region", REGION])]
        default_runs = None
        for label, extra in variants:
            for _ in range(2):
                check(lab, binary, lab.config_path, extra)
            runs = []
            for _ in range(args.cost_runs):
                r = check(lab, binary, lab.config_path, extra)
                expect_reachable(r, ["ssm", "ssmmessages", "ec2messages"], "cost")
                runs.append(r)
            if default_runs is None:
                default_runs = runs
            walls = [r.wall_ms for r in runs]
            rss = [r.maxrss_kib / 1024 for r in runs]
            t.add(label, "%.1f / %.1f / %.1f" % (min(walls), med(walls), max(walls)),
                  "%s / %s" % (fmt(med([r.elapsed_ms() for r in runs])),
                               fmt(max(r.elapsed_ms() for r in runs))),
                  fmt(med([r.cpu_ms for r in runs]), 1),
                  "%.2f / %.2f" % (med(rss), max(rss)))
        parts = cost_components(lab, binary)
    out.tables.append(t)
    out.tables.append(parts)
    walls = [r.wall_ms for r in default_runs]
    rss = [r.maxrss_kib for r in default_runs]
    out.target("cost: wall time < %g ms (median)" % WALL_TARGET_MS,
               "min %.1f ms, median %.1f ms, max %.1f ms" % (min(walls), med(walls), max(walls)),
               med(walls) < WALL_TARGET_MS)
    out.target("cost: peak RSS < %g MiB (max)" % (RSS_TARGET_KIB / 1024),
               "max %.2f MiB" % (max(rss) / 1024), max(rss) < RSS_TARGET_KIB)


# --- main -----------------------------------------------------------------------------------

def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (%s), Linux %s, %s, Python %s" % (
        os.cpu_count(), model, platform.release(), platform.machine(),
        platform.python_version())


def loadavg():
    """The load averages: other work on the machine makes the figures noisier."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def busy(load):
    try:
        return float(load.split()[0]) > (os.cpu_count() or 1) / 2
    except (ValueError, IndexError):
        return False


def source_tree():
    """The commit the figures belong to, and whether the tree had changes on top of it."""
    repo = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return "%s%s" % (head or "unknown", " with local changes" if dirty else "")


def binary_version(binary):
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unknown (%s)" % e


def main(argv):
    if len(argv) >= 3 and argv[0] == "_measure":
        return measure_main(argv[1], argv[2:])
    parser = argparse.ArgumentParser(prog="lab_bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True, help="the ssm-doctor executable")
    parser.add_argument("--standin", help="the agent stand-in (default: next to --binary, "
                                          "tests/lab_agent_standin)")
    parser.add_argument("--runs", type=int, default=10, help="parallelism repetitions")
    parser.add_argument("--deadline-runs", type=int, default=5,
                        help="deadline runs of variant (a); (b) gets two fewer")
    parser.add_argument("--cost-runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0, help="check --timeout in all-drop")
    parser.add_argument("--only", default="parallel,deadline,cost",
                        help="comma-separated: parallel, deadline, cost")
    parser.add_argument("--markdown", action="store_true",
                        help="print the tables as Markdown too (for docs/benchmarks.md)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(chosen) - {"parallel", "deadline", "cost"}
    if unknown or min(args.runs, args.deadline_runs, args.cost_runs) < 1 or args.timeout <= 0:
        parser.error("bad --only %s or a count/timeout below 1/0" % ",".join(unknown))
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        parser.error("--binary %s is not an executable" % binary)
    standin = args.standin or lab_cli.default_standin(binary)

    refusal = lab_cli.preflight()
    if refusal is not None:
        return refusal
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lab_cli.on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    out = Outcome()
    started = time.monotonic()
    load_before = loadavg()
    benches = {"parallel": bench_parallel, "deadline": bench_deadline, "cost": bench_cost}
    try:
        for name in chosen:
            benches[name](args, binary, standin, out)
    except (LabError, BenchError) as e:
        print("lab_bench: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab_bench: interrupted; the lab is removed", file=sys.stderr)
        return 130

    print("machine: %s" % machine())
    print("load:    %s at the start, %s at the end (1, 5, 15 min)" % (load_before, loadavg()))
    if busy(load_before) or busy(loadavg()):
        print("WARNING: the machine was busy (load above half its CPUs): the wall times include "
              "waiting for a CPU; run again on a quiet machine")
    print("binary:  %s (%s), built %s; source tree now %s"
          % (binary, binary_version(binary),
             time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.stat(binary).st_mtime)),
             source_tree()))
    print("command: sudo python3 bench/lab_bench.py %s" % " ".join(argv))
    print("took %.0f s\n" % (time.monotonic() - started))
    for t in out.tables:
        print(t.text() + "\n")
    print("Targets")
    for text, measured, met in out.verdicts:
        print("  %-4s %s: %s" % ("met" if met else "MISS", text, measured))
    if args.markdown:
        print("\n--- Markdown ---\n")
        for t in out.tables:
            print(t.markdown() + "\n")
        print("| target | measured | met |\n|---|---|---|")
        for text, measured, met in out.verdicts:
            print("| %s | %s | %s |" % (text, measured, "yes" if met else "**no**"))
    return 0 if all(met for _, _, met in out.verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
