#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ssm-doctor's systemd units under a real systemd: a Debian 12 container booted with
systemd-nspawn, its network private (loopback only), the units installed as the RPM installs
them, the agent stand-in running as root and the lab's endpoint and IMDS servers on loopback.

  sudo python3 tests/systemd/units_test.py --binary build/ssm-doctor \\
      --standin build/tests/lab_agent_standin [--base DIR] [--keep]
  sudo python3 tests/systemd/units_test.py --rpm build/packaging-rpm/RPMS/x86_64 \\
      --standin build/tests/lab_agent_standin

With --binary, the binary and the units are copied where packaging/ssm-doctor.spec puts them.
With --rpm (the RPM, or the directory rpmbuild wrote it to), the package itself is installed with
`rpm -i --nodeps` inside the booted container, so its scriptlets run against a live systemd; the
test's configuration is already in place, so %config(noreplace) must leave it and write
ssm-doctor.yaml.rpmnew; and at the end `rpm -e` must stop the daemon and remove the units.

What it checks, in order:
  1. the one-shot check: ssm-doctor.service runs to its end, and its exit status (0 ok,
     1 warning, 2 critical, 3 unknown) is the unit's result, for a healthy and a broken network;
  2. the timer is accepted and scheduled;
  3. the daemon: ssm-doctor-watch.service becomes active only after READY=1, pings the watchdog
     (WatchdogSec=4s here), runs as a transient user with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
     and nothing else, and with only those sees the root agent's sessions;
  4. `systemctl reload` rereads the configuration, and a broken file is refused and the old one
     kept; a stopped agent's sessions are logged as closed;
  5. `systemctl stop` ends the daemon within a second, with status 0;
  6. systemd-analyze security rates the running units (printed).

The container's base (debootstrap of Debian 12 minbase with systemd and python3, from Debian's
archive) is made once in --base and reused; each run works on a copy of it, deleted at the end.
Nothing leaves the container's network namespace: it has no interface but loopback.

Exit status: 0 passed, 1 failed, 77 cannot run here (not root, no systemd-nspawn or debootstrap,
or the container does not boot), unless SSM_DOCTOR_SYSTEMD_REQUIRED=1 makes that a failure.
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
LAB_DIR = os.path.join(SOURCE, "tests", "lab")
sys.path.insert(0, LAB_DIR)
sys.dont_write_bytecode = True  # keep the source tree clean when run from it

from labkit.pki import LabPki  # noqa: E402

SKIP = 77
REGION = "us-east-1"
AGENT_VERSION = "3.3.380.0"
# The endpoints on loopback addresses of the container, found through its /etc/hosts.
ENDPOINTS = {"ssm": "127.0.0.2", "ssmmessages": "127.0.0.3", "ec2messages": "127.0.0.4"}
IMDS_ADDRESS = "127.0.0.5"
HELD = ("ssm", "ssmmessages")  # the stand-in's sessions: an agent of 3.3.40.0 or later
# procps: /bin/kill, which ssm-doctor-watch.service's ExecReload= runs (every Debian install but
# minbase has it; util-linux-core has it on Amazon Linux 2023).
# rpm: the --rpm mode installs the package with it.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "python3", "libssl3", "procps", "rpm",
            # the libraries of a non-portable build (scripts/build.sh); the RPM's needs none
            "libyaml-cpp0.7", "libspdlog1.10", "libfmt9"]
MIRROR = "http://deb.debian.org/debian"
EXIT_OF_VERDICT = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# CAP_DAC_READ_SEARCH is capability 2, CAP_SYS_PTRACE 19.
EXPECTED_CAPS = (1 << 2) | (1 << 19)


class Failure(Exception):
    pass


class CannotRun(Exception):
    pass


def host_name(service):
    return "%s.%s.amazonaws.com" % (service, REGION)


def say(text):
    print(text, flush=True)


# --- the container's base image ------------------------------------------------------------

def ensure_base(base):
    """A Debian 12 tree with systemd in `base`, made by debootstrap when missing. Runs that
    share `base` wait for each other here."""
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    with open(os.path.abspath(base) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _make_base(base)


def _make_base(base):
    marker = os.path.join(base, ".ssm-doctor-base")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read().split() == PACKAGES:
                return
    if shutil.which("debootstrap") is None:
        raise CannotRun("debootstrap is not installed")
    partial = base + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    say("making the container's base in %s (debootstrap, about a minute)" % base)
    result = subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), "bookworm",
         partial, MIRROR], capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise CannotRun("debootstrap failed (%d): %s" % (result.returncode,
                                                         result.stdout[-1500:] + result.stderr[-1500:]))
    shutil.rmtree(base, ignore_errors=True)
    with open(os.path.join(partial, ".ssm-doctor-base"), "w") as f:
        f.write(" ".join(PACKAGES) + "\n")
    os.rename(partial, base)


# --- what the run installs into its copy ----------------------------------------------------

def write(root, path, text, mode=0o644):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def copy(root, source, path, mode=0o755):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    shutil.copyfile(source, full)
    os.chmod(full, mode)


def doctor_config(ca_file, broken=False):
    if broken:
        return "watch:\n  interval: [this is not a number\n"
    return "\n".join([
        "# ssm-doctor configuration of the systemd test: every target on loopback",
        "agent:",
        "  binary: /opt/agent/amazon-ssm-agent",
        "imds:",
        "  endpoint: http://%s" % IMDS_ADDRESS,
        "  timeout: 1",
        "tls:",
        "  ca_file: %s" % ca_file,
        "probe:",
        "  timeout: 3",
        "  endpoints: [%s]" % ", ".join(ENDPOINTS),
        "watch:",
        "  interval: 60",
        "  sample: 1",
        "  summary: 3600",
        ""])


UNITS = ("ssm-doctor.service", "ssm-doctor.timer", "ssm-doctor-watch.service")
RPM_INSIDE = "/opt/ssm-doctor.rpm"


def install(root, binary, rpm, standin):
    """Puts ssm-doctor in place as packaging/ssm-doctor.spec does (or the RPM, to be installed
    once the container runs), and the lab's pieces."""
    if rpm:
        copy(root, rpm, RPM_INSIDE, 0o644)
    else:
        copy(root, binary, "/usr/bin/ssm-doctor")
        for unit in UNITS:
            copy(root, os.path.join(SOURCE, "systemd", unit), "/usr/lib/systemd/system/" + unit,
                 0o644)

    # Certificates for the endpoints, made on the host into the container's tree.
    data = os.path.join(root, "opt", "lab-data")
    os.makedirs(data)
    pki = LabPki(data)
    inside = lambda path: "/" + os.path.relpath(path, root)  # noqa: E731
    listeners = []
    for service, address in ENDPOINTS.items():
        cert, key = pki.leaf(host_name(service))
        listeners.append({"host": host_name(service), "service": service, "address": address,
                          "port": 443, "behavior": "normal", "cert": inside(cert),
                          "key": inside(key)})
    spec = {"endpoints": listeners,
            "imds": {"address": IMDS_ADDRESS, "port": 80, "mode": "v2", "region": REGION,
                     "instance_id": "i-0123456789abcdef0", "mac": "0e:49:61:0f:c3:11",
                     "vpc_cidrs": ["127.0.0.0/8"], "role": "ssm-doctor-test-role"},
            "proxy": None}
    write(root, "/opt/lab-data/spec.json", json.dumps(spec, indent=2))
    ca_file = inside(pki.ca_file)
    write(root, "/etc/ssm-doctor/ssm-doctor.yaml", doctor_config(ca_file))
    shutil.copytree(LAB_DIR, os.path.join(root, "opt", "lab"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.cpp"))

    copy(root, standin, "/opt/agent/amazon-ssm-agent")
    write(root, "/opt/agent/VERSION", AGENT_VERSION + "\n")
    holds = " ".join("--hold %s:443:%s" % (ENDPOINTS[s], host_name(s)) for s in HELD)

    write(root, "/etc/hosts", "127.0.0.1 localhost\n" + "".join(
        "%s %s\n" % (address, host_name(s)) for s, address in ENDPOINTS.items()))
    # Nothing listens there: a name outside /etc/hosts fails at once, inside the container.
    write(root, "/etc/resolv.conf", "nameserver 127.0.0.1\n")

    write(root, "/etc/systemd/system/ssm-doctor-test-servers.service", "\n".join([
        "[Unit]",
        "Description=the lab's endpoint and IMDS servers on loopback",
        "[Service]",
        "ExecStart=/usr/bin/python3 /opt/lab/lab.py _serve /opt/lab-data/spec.json",
        ""]))
    # The real agent's unit name, so the ssm-doctor units' After= applies: the supervisor, and
    # its worker, which holds the sessions, as a unit of its own that starts and stops with it.
    copy(root, standin, "/opt/agent/ssm-agent-worker")
    write(root, "/etc/systemd/system/amazon-ssm-agent.service", "\n".join([
        "[Unit]",
        "Description=SSM Agent stand-in: the supervisor",
        "Wants=ssm-agent-worker.service",
        "[Service]",
        "ExecStart=/opt/agent/amazon-ssm-agent --ca %s" % ca_file,
        ""]))
    write(root, "/etc/systemd/system/ssm-agent-worker.service", "\n".join([
        "[Unit]",
        "Description=SSM Agent stand-in: the worker, holding sessions to the endpoints",
        "PartOf=amazon-ssm-agent.service",
        "Requires=ssm-doctor-test-servers.service",
        "After=ssm-doctor-test-servers.service amazon-ssm-agent.service",
        "[Service]",
        "ExecStart=/opt/agent/ssm-agent-worker --ca %s %s" % (ca_file, holds),
        "Restart=on-failure",
        "RestartSec=1",
        ""]))
    # A short watchdog, so that a few seconds show whether the pings arrive.
    write(root, "/etc/systemd/system/ssm-doctor-watch.service.d/test.conf",
          "[Service]\nWatchdogSec=4s\n")
    return ca_file


# --- the container ---------------------------------------------------------------------------

class Container:
    def __init__(self, root, name, log_path):
        self.root = root
        self.name = name
        self.log_path = log_path
        self.proc = None
        self.leader = None

    def boot(self):
        if shutil.which("systemd-nspawn") is None:
            raise CannotRun("systemd-nspawn is not installed (Debian: systemd-container)")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--directory", self.root, "--machine", self.name,
             "--private-network", "--register=no", "--keep-unit", "--resolv-conf=off",
             "--timezone=off", "--link-journal=no", "--boot"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        until = time.monotonic() + 30
        while self.leader is None:
            if self.proc.poll() is not None:
                raise CannotRun("systemd-nspawn ended with %d: %s"
                                % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > until:
                raise CannotRun("no init process in the container after 30 s")
            self.leader = self._child_of(self.proc.pid)
            time.sleep(0.1)
        # Until the manager's socket exists, systemctl prints nothing and fails: ask again.
        until = time.monotonic() + 120
        while True:
            state = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                             timeout=120)
            if state.stdout.strip() in ("running", "degraded"):
                break
            if self.proc.poll() is not None or time.monotonic() > until:
                raise CannotRun("the container did not boot: %r %r; %s"
                                % (state.stdout.strip(), state.stderr.strip(), self.log_tail()))
            time.sleep(0.2)
        if state.stdout.strip() == "degraded":
            failed = self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout
            say("note: the container booted degraded: %s" % failed.strip())

    @staticmethod
    def _child_of(ppid):
        """The first child of ppid (nspawn's is the container's init), or None."""
        try:
            with open("/proc/%d/task/%d/children" % (ppid, ppid)) as f:
                children = f.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def run(self, argv, check=True, timeout=60):
        """argv inside the container, in all its namespaces."""
        result = subprocess.run(["nsenter", "--target", str(self.leader), "--all", "--"] + argv,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise Failure("%s: exit %d: %s%s" % (" ".join(argv), result.returncode,
                                                  result.stdout[-1500:], result.stderr[-1500:]))
        return result

    def show(self, unit, *properties):
        out = self.run(["systemctl", "show", unit] + ["--property=" + p for p in properties])
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def journal(self, unit):
        return self.run(["journalctl", "--no-pager", "-o", "cat", "-u", unit],
                        check=False).stdout


    def halt(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGRTMIN+3 asks the container's systemd to halt.
        try:
            os.kill(self.leader, signal.SIGRTMIN + 3)
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, TypeError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- the checks -----------------------------------------------------------------------------

def expect(condition, text, detail=""):
    if not condition:
        raise Failure(text + (": " + detail if detail else ""))
    say("ok: " + text)


def wait_for(what, condition, timeout):
    until = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > until:
            raise Failure("%s: not within %.0f s" % (what, timeout))
        time.sleep(0.2)


def oneshot(c, expect_verdict_in):
    """Runs ssm-doctor.service once and checks its result; returns its JSON report."""
    c.run(["systemctl", "reset-failed", "ssm-doctor.service"], check=False)
    started = c.run(["systemctl", "start", "ssm-doctor.service"], check=False, timeout=120)
    props = c.show("ssm-doctor.service", "Result", "ExecMainStatus", "ActiveState")
    # The unit's property InvocationID is cleared once a oneshot unit is inactive; systemd's
    # last line about the unit carries it.
    last = c.run(["journalctl", "--no-pager", "-o", "json", "-n", "1", "-u",
                  "ssm-doctor.service"]).stdout
    invocation = json.loads(last.splitlines()[-1]).get("INVOCATION_ID", "")

    # stdout (the JSON report) and stderr (the log lines) share the journal stream, which
    # journald may still be reading when systemctl returns.
    def printed_report():
        entries = c.run(["journalctl", "--no-pager", "-o", "json", "_TRANSPORT=stdout",
                         "_SYSTEMD_INVOCATION_ID=" + invocation], check=False).stdout
        lines = [json.loads(e).get("MESSAGE") for e in entries.splitlines()]
        try:
            return json.loads("\n".join(line for line in lines
                                        if isinstance(line, str) and
                                        not line.startswith("level=")))
        except ValueError:
            return None
    report = wait_for("the JSON report in the journal of ssm-doctor.service", printed_report, 10)
    verdict = report.get("verdict")
    expect(verdict in expect_verdict_in, "one-shot check: verdict %s" % verdict,
           "expected one of %s" % (expect_verdict_in,))
    status = int(props["ExecMainStatus"])
    expect(status == EXIT_OF_VERDICT[verdict],
           "one-shot check: exit status %d is the verdict's (%s)" % (status, verdict))
    wanted = "success" if status == 0 else "exit-code"
    expect(props["Result"] == wanted and (started.returncode == 0) == (status == 0),
           "one-shot check: the unit's result is %s" % props["Result"])
    return report


def lines_with(text, event):
    return [line for line in text.splitlines() if "event=%s " % event in line + " "]


def install_rpm(c):
    """rpm -i inside the running container: the scriptlets meet a live systemd."""
    before = c.run(["cat", "/etc/ssm-doctor/ssm-doctor.yaml"]).stdout
    c.run(["rpm", "-i", "--nodeps", RPM_INSIDE], timeout=120)
    # On Fedora and Amazon Linux 2023, systemd's own package reloads the manager after any
    # package adds unit files (its %transfiletriggerin on /usr/lib/systemd/system); Debian's
    # systemd has no RPM triggers, so the test does what that trigger does.
    c.run(["systemctl", "daemon-reload"])
    files = c.run(["rpm", "-ql", "ssm-doctor"]).stdout.split()
    expect(all("/usr/lib/systemd/system/" + unit in files for unit in UNITS) and
           "/usr/bin/ssm-doctor" in files, "rpm -i: the package installs its binary and units")
    after = c.run(["cat", "/etc/ssm-doctor/ssm-doctor.yaml"]).stdout
    rpmnew = c.run(["test", "-f", "/etc/ssm-doctor/ssm-doctor.yaml.rpmnew"], check=False)
    expect(after == before and rpmnew.returncode == 0,
           "rpm -i: %config(noreplace) kept the configuration in place and wrote .rpmnew")
    loaded = c.show("ssm-doctor-watch.service", "LoadState", "FragmentPath")
    # Debian's systemd names /lib/systemd/system first; /lib is /usr/lib there.
    fragment = c.run(["realpath", loaded.get("FragmentPath", "-")], check=False).stdout.strip()
    expect(loaded["LoadState"] == "loaded" and
           fragment == "/usr/lib/systemd/system/ssm-doctor-watch.service",
           "rpm -i: systemd sees the units in %{_unitdir}", str(loaded))


def remove_rpm(c):
    """rpm -e with the daemon running: %systemd_preun must stop it before its files go."""
    c.run(["systemctl", "start", "ssm-doctor-watch.service"], timeout=60)
    c.run(["rpm", "-e", "--nodeps", "ssm-doctor"], timeout=120)
    state = c.show("ssm-doctor-watch.service", "ActiveState", "LoadState")
    gone = c.run(["test", "-e", "/usr/bin/ssm-doctor"], check=False).returncode != 0
    expect(state["ActiveState"] == "inactive" and state["LoadState"] == "not-found" and gone,
           "rpm -e: the running daemon is stopped and the units and binary are gone", str(state))


def test(c, config_path, ca_file, rpm):
    if rpm:
        install_rpm(c)
    version = c.run(["/usr/bin/ssm-doctor", "--version"])
    expect(version.returncode == 0, "the installed binary runs: %s" % version.stdout.strip())

    # 1. The one-shot check, healthy then broken.
    c.run(["systemctl", "start", "amazon-ssm-agent.service"])
    wait_for("the agent stand-in's sessions",
             lambda: "ready" in c.journal("ssm-agent-worker.service"), 20)
    report = oneshot(c, ("ok", "warning"))
    held = [e for e in report.get("endpoints", []) if e.get("sessions")]
    expect(len(held) == len(HELD), "one-shot check: the agent's sessions are seen "
           "(%d endpoints with sessions)" % len(held), json.dumps(report)[:1500])

    c.run(["systemctl", "stop", "amazon-ssm-agent.service", "ssm-doctor-test-servers.service"])
    oneshot(c, ("critical",))
    c.run(["systemctl", "start", "amazon-ssm-agent.service"])
    wait_for("the agent stand-in's sessions again",
             lambda: c.journal("ssm-agent-worker.service").count("ready") >= 2, 20)

    # 2. The timer.
    c.run(["systemctl", "start", "ssm-doctor.timer"])
    timer = c.show("ssm-doctor.timer", "ActiveState", "SubState", "NextElapseUSecMonotonic")
    expect(timer["ActiveState"] == "active" and timer["SubState"] == "waiting",
           "the timer is active and waiting (next: %s)" % timer["NextElapseUSecMonotonic"])

    # 3. The daemon.
    started = time.monotonic()
    c.run(["systemctl", "start", "ssm-doctor-watch.service"], timeout=60)
    props = c.show("ssm-doctor-watch.service", "ActiveState", "MainPID", "WatchdogUSec",
                   "StatusText", "Type")
    expect(props["ActiveState"] == "active" and props["Type"] == "notify",
           "watch: active after READY=1 (%.1f s after start)" % (time.monotonic() - started))
    expect(props["WatchdogUSec"] in ("4s", "4000000"), "watch: WatchdogSec is %s"
           % props["WatchdogUSec"])
    pid = props["MainPID"]
    status = c.run(["cat", "/proc/%s/status" % pid]).stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = int(fields["Uid"].split()[0])
    cap_eff = int(fields["CapEff"].strip(), 16)
    cap_bnd = int(fields["CapBnd"].strip(), 16)
    expect(uid != 0, "watch: runs as a transient user (uid %d), not root" % uid)
    expect(cap_eff == EXPECTED_CAPS and cap_bnd == EXPECTED_CAPS,
           "watch: its capabilities are CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only",
           "CapEff %x CapBnd %x" % (cap_eff, cap_bnd))

    journal = wait_for("watch: a session_opened line per held session",
                       lambda: (lambda j: j if len(lines_with(j, "session_opened")) >= len(HELD)
                                else None)(c.journal("ssm-doctor-watch.service")), 20)
    expect(len(lines_with(journal, "verdict_changed")) == 1,
           "watch: the first check's verdict is logged once")
    opened = lines_with(journal, "session_opened")
    expect(all("process=ssm-agent-worker" in line for line in opened),
           "watch: with those two capabilities it sees the root agent's sessions: %d opened"
           % len(opened), "\n".join(opened))
    status_text = wait_for("watch: a STATUS= after the first check", lambda: (
        lambda t: t if t.startswith("verdict") else None)(
            c.show("ssm-doctor-watch.service", "StatusText")["StatusText"]), 20)
    expect(True, "watch: systemctl status shows %r" % status_text)

    before = c.show("ssm-doctor-watch.service", "WatchdogTimestampMonotonic")
    time.sleep(9)  # more than twice WatchdogSec
    after = c.show("ssm-doctor-watch.service", "ActiveState", "NRestarts", "MainPID",
                   "WatchdogTimestampMonotonic")
    expect(after["ActiveState"] == "active" and after["NRestarts"] == "0" and
           after["MainPID"] == pid and
           after["WatchdogTimestampMonotonic"] != before["WatchdogTimestampMonotonic"],
           "watch: the watchdog's pings arrive (still the same process after 9 s, WatchdogSec=4s)")
    memory = c.run(["cat", "/proc/%s/status" % pid]).stdout
    rss = {line.split(":")[0]: line.split(":")[1].strip() for line in memory.splitlines()
           if line.startswith(("VmRSS", "RssAnon", "RssFile"))}
    say("note: the daemon's memory under systemd: %s" % ", ".join(
        "%s %s" % kv for kv in sorted(rss.items())))
    events = c.run(["cat", "/var/log/ssm-doctor/events.log"], check=False)
    expect(events.returncode == 0 and '"event":"check"' in events.stdout.replace(" ", ""),
           "watch: the event log is written in LogsDirectory= by the transient user",
           events.stderr + events.stdout[:500])

    # 4. Reload, a broken file, a stopped agent.
    c.run(["systemctl", "reload", "ssm-doctor-watch.service"])
    wait_for("watch: config_reloaded after systemctl reload", lambda: lines_with(
        c.journal("ssm-doctor-watch.service"), "config_reloaded"), 10)
    expect(True, "watch: systemctl reload rereads the configuration")
    with open(config_path, "w") as f:
        f.write(doctor_config(ca_file, broken=True))
    c.run(["systemctl", "reload", "ssm-doctor-watch.service"])
    rejected = wait_for("watch: config_rejected for a broken file", lambda: lines_with(
        c.journal("ssm-doctor-watch.service"), "config_rejected"), 10)
    expect(c.show("ssm-doctor-watch.service", "ActiveState")["ActiveState"] == "active",
           "watch: a broken file is refused and the old one kept: %s" % rejected[0])
    with open(config_path, "w") as f:
        f.write(doctor_config(ca_file))

    c.run(["systemctl", "stop", "amazon-ssm-agent.service"])
    closed = wait_for("watch: session_closed lines for the stopped agent", lambda: (
        lambda lines: lines if len(lines) >= len(HELD) else None)(
            lines_with(c.journal("ssm-doctor-watch.service"), "session_closed")), 10)
    expect(True, "watch: the stopped agent's sessions are logged as closed (%d)" % len(closed))

    # 5. Stop.
    asked = time.monotonic()
    c.run(["systemctl", "stop", "ssm-doctor-watch.service"], timeout=30)
    took = time.monotonic() - asked
    props = c.show("ssm-doctor-watch.service", "Result", "ExecMainStatus", "ActiveState")
    expect(props["ActiveState"] == "inactive" and props["Result"] == "success" and
           props["ExecMainStatus"] == "0" and took < 1.0,
           "watch: systemctl stop took %.0f ms, status 0" % (took * 1000), str(props))
    expect(lines_with(c.journal("ssm-doctor-watch.service"), "watch_stopped"),
           "watch: watch_stopped is logged")

    # 6. The exposure figures of the units as this systemd rates them.
    for unit in ("ssm-doctor.service", "ssm-doctor-watch.service"):
        rated = c.run(["systemd-analyze", "security", "--no-pager", unit], check=False)
        last = [line for line in rated.stdout.splitlines() if "Overall exposure" in line]
        say("%s: %s" % (unit, last[-1].strip() if last else rated.stdout[-300:]))

    if rpm:
        remove_rpm(c)


def rpm_file(path):
    """The package named by --rpm: a file, or the one ssm-doctor-*.rpm in a directory."""
    if os.path.isfile(path):
        return os.path.abspath(path)
    found = sorted(f for f in os.listdir(path) if f.startswith("ssm-doctor-") and
                   f.endswith(".rpm") and not f.endswith(".src.rpm") and "debug" not in f)
    if len(found) != 1:
        raise Failure("--rpm %s: expected one ssm-doctor RPM there, found %s" % (path, found))
    return os.path.join(os.path.abspath(path), found[0])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--binary", help="the ssm-doctor executable")
    what.add_argument("--rpm", help="the RPM, or the directory it is in")
    parser.add_argument("--standin", required=True, help="the agent stand-in (lab_agent_standin)")
    parser.add_argument("--base", default=os.path.join(tempfile.gettempdir(),
                                                       "ssm-doctor-systemd-base"),
                        help="the container's base tree, made when missing and reused")
    parser.add_argument("--keep", action="store_true", help="keep the run's copy for a look")
    args = parser.parse_args(argv)
    required = os.environ.get("SSM_DOCTOR_SYSTEMD_REQUIRED") == "1"

    work = None
    container = None
    try:
        if os.geteuid() != 0:
            raise CannotRun("needs root (network namespaces, systemd-nspawn)")
        rpm = rpm_file(args.rpm) if args.rpm else None
        ensure_base(args.base)
        work = tempfile.mkdtemp(prefix="ssm-doctor-systemd-")
        root = os.path.join(work, "root")
        say("copying the base to %s" % root)
        subprocess.run(["cp", "-a", "--reflink=auto", args.base, root], check=True)
        ca_file = install(root, args.binary and os.path.abspath(args.binary), rpm,
                          os.path.abspath(args.standin))
        container = Container(root, "ssmdoc-%d" % os.getpid(), os.path.join(work, "nspawn.log"))
        container.boot()
        say("the container booted")
        test(container, os.path.join(root, "etc", "ssm-doctor", "ssm-doctor.yaml"), ca_file, rpm)
        say("PASS")
        return 0
    except CannotRun as e:
        say("cannot run here: %s" % e)
        return 1 if required else SKIP
    except (Failure, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        say("FAIL: %s: %s" % (type(e).__name__, e))
        if container is not None and container.leader is not None:
            for unit in ("ssm-doctor.service", "ssm-doctor-watch.service",
                         "amazon-ssm-agent.service", "ssm-agent-worker.service",
                         "ssm-doctor-test-servers.service"):
                say("--- journal of %s ---\n%s" % (unit, container.journal(unit)[-6000:]))
        return 1
    finally:
        if container is not None:
            container.halt()
        if work is not None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif work is not None:
            say("kept %s" % work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
