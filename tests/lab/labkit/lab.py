# SPDX-License-Identifier: Apache-2.0
"""A simulated VPC on one machine: two network namespaces, a resolver, IMDS, endpoints, agent.

    with Lab(scenario, standin=path) as lab:
        result = lab.run_doctor(binary, ["--output", "json"])

Address plan (inside the lab only; see README.md):
  instance namespace  veth 10.99.0.10/24; routes to 10.99.1.0/24, 203.0.113.0/24 and
                      169.254.169.254 via 10.99.0.1, and nothing else
  VPC namespace       veth 10.99.0.1/24 and 10.99.0.2 (the resolver, as in a VPC: base + 2);
                      on lo: endpoints 10.99.1.x, "public" addresses 203.0.113.x,
                      169.254.169.254 (IMDS), 10.99.2.53 (a DNS black hole)

Everything is created under unique names (ssmd-<pid>-<random>) and removed on every path out:
normal exit, exceptions, SIGINT/SIGTERM (turned into exceptions by the CLI), and, for a lab
whose owner was killed outright, by the stale-lab sweep at the start of the next lab.
"""

import ctypes
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from . import LabError, pki
from .scenarios import ALL_SERVICES, BREAKING_FAULTS, Scenario

PREFIX = "ssmd-"
NETNS_DIR = "/etc/netns"
INSTANCE_ADDRESS = "10.99.0.10"
VPC_ADDRESS = "10.99.0.1"
RESOLVER_ADDRESS = "10.99.0.2"
BLACKHOLE_DNS = "10.99.2.53"
IMDS_ADDRESS = "169.254.169.254"
PROXY_ADDRESS = "10.99.0.3"
PROXY_PORT = 3128
PROXY_NAME = "proxy.corp.internal"
VPC_CIDR = "10.99.0.0/16"
# Last octet per service, for 10.99.1.x (endpoint) and 203.0.113.x (public); overrides get 21+.
SERVICE_OCTET = {s: 11 + i for i, s in enumerate(ALL_SERVICES)}
LAB_MAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab.py")
READY_TIMEOUT = 15.0


def _die_with_parent():
    """In a child before exec: be killed when the lab process dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run(args, check=True, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(args), result.returncode,
                                               result.stderr.strip()))
    return result


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_netns_processes(netns):
    pids = run(["ip", "netns", "pids", netns], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def sweep_stale_labs():
    """Removes what labs whose owning process is gone left behind."""
    names = [line.split()[0] for line in
             run(["ip", "netns", "list"], check=False).stdout.splitlines() if line.strip()]
    if os.path.isdir(NETNS_DIR):
        names += [n for n in os.listdir(NETNS_DIR) if n not in names]
    for name in names:
        match = re.match(r"^%s(\d+)-[0-9a-f]+-(inst|vpc)$" % PREFIX, name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        _kill_netns_processes(name)
        run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(os.path.join(NETNS_DIR, name), ignore_errors=True)
    for entry in os.listdir(tempfile.gettempdir()):
        match = re.match(r"^%s(\d+)-[0-9a-f]+-" % PREFIX, entry)
        path = os.path.join(tempfile.gettempdir(), entry)
        kept = os.path.exists(os.path.join(path, "KEEP"))
        if match and not kept and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


class Host:
    """One name the lab serves and where it lives."""

    def __init__(self, name, service, address, kind, fault=None):
        self.name = name
        self.service = service
        self.address = address
        self.kind = kind  # "vpc" or "public"
        self.fault = fault


class Lab:
    def __init__(self, scenario: Scenario, standin=None, keep_dir=False, verbose=False):
        self.scenario = scenario
        self.standin = standin
        self.keep_dir = keep_dir
        self.verbose = verbose
        tag = "%s%d-%s" % (PREFIX, os.getpid(), secrets.token_hex(3))
        self.inst = tag + "-inst"
        self.vpc = tag + "-vpc"
        self.dir = None
        self.tag = tag
        self.children = []  # Popen objects, stopped in reverse order
        self.init_pid = None  # host PID of process 1 in the instance's PID namespace
        self.hosts = []
        self.config_path = None
        self._made_netns = []

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        sweep_stale_labs()
        self.dir = tempfile.mkdtemp(prefix=self.tag + "-")
        self._log("lab %s in %s" % (self.tag, self.dir))
        self.hosts = self._plan_hosts()
        self._make_network()
        self._make_pki()
        self._start_resolver()
        self._start_servers()
        self._apply_packet_faults()
        self._make_agent_files()
        self._start_instance()
        self.config_path = self._write_doctor_config()

    def stop(self):
        """Tears everything down; safe to call more than once and after a partial start."""
        signal_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if self.init_pid:
                try:
                    os.kill(self.init_pid, signal.SIGKILL)  # ends the whole PID namespace
                except ProcessLookupError:
                    pass
                self.init_pid = None
            for child in reversed(self.children):
                if child.poll() is None:
                    child.terminate()
            for child in reversed(self.children):
                try:
                    child.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=3)
            self.children = []
            for netns in list(self._made_netns):
                _kill_netns_processes(netns)
                run(["ip", "netns", "del", netns], check=False)
                self._made_netns.remove(netns)
            shutil.rmtree(os.path.join(NETNS_DIR, self.inst), ignore_errors=True)
            if self.dir and not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            elif self.dir:
                with open(os.path.join(self.dir, "KEEP"), "w") as f:
                    f.write("kept on request; remove the directory when done\n")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)

    # --- plan -----------------------------------------------------------------------------

    def host_name(self, service):
        s = self.scenario
        return s.overrides.get(service) or "%s.%s.%s" % (service, s.region, s.domain)

    def _plan_hosts(self):
        """Every name the resolver knows, with its address and fault."""
        s = self.scenario
        hosts = []
        next_override = 21
        for service in ALL_SERVICES:
            default = "%s.%s.%s" % (service, s.region, s.domain)
            fault = s.faults.get(service)
            override = s.overrides.get(service)
            if override:
                hosts.append(Host(override, service, "10.99.1.%d" % next_override, "vpc", fault))
                next_override += 1
                fault = None  # the fault belongs to the host the agent uses
            if service in s.vpc_endpoints:
                hosts.append(Host(default, service, "10.99.1.%d" % SERVICE_OCTET[service],
                                  "vpc", fault))
            else:
                hosts.append(Host(default, service, "203.0.113.%d" % SERVICE_OCTET[service],
                                  "public", fault))
        return hosts

    def host_for(self, service):
        name = self.host_name(service)
        return next(h for h in self.hosts if h.name == name)

    def reachable(self, host):
        """Whether an agent could hold a verified TLS session to this host."""
        if host.fault in BREAKING_FAULTS:
            return False
        proxy = self.scenario.proxy
        if proxy is not None:
            return host.service not in proxy.get("deny", [])
        return host.kind == "vpc" or self.scenario.nat

    # --- network --------------------------------------------------------------------------

    def _ns(self, netns, *args):
        return run(["ip", "-n", netns] + list(args))

    def _make_network(self):
        for netns in (self.inst, self.vpc):
            self._made_netns.append(netns)  # first, so an interrupted add is still undone
            run(["ip", "netns", "add", netns])
            self._ns(netns, "link", "set", "lo", "up")
        # Created inside the namespaces, so the names never exist in the host's namespace.
        self._ns(self.inst, "link", "add", "eth0", "type", "veth", "peer", "name", "vpc0",
                 "netns", self.vpc)
        self._ns(self.inst, "addr", "add", INSTANCE_ADDRESS + "/24", "dev", "eth0")
        self._ns(self.inst, "link", "set", "eth0", "up")
        self._ns(self.vpc, "addr", "add", VPC_ADDRESS + "/24", "dev", "vpc0")
        self._ns(self.vpc, "addr", "add", RESOLVER_ADDRESS + "/32", "dev", "vpc0")
        self._ns(self.vpc, "link", "set", "vpc0", "up")
        for prefix in ("10.99.1.0/24", "203.0.113.0/24", IMDS_ADDRESS + "/32"):
            self._ns(self.inst, "route", "add", prefix, "via", VPC_ADDRESS)
        if self.scenario.proxy is not None:
            self._ns(self.vpc, "addr", "add", PROXY_ADDRESS + "/32", "dev", "vpc0")
        local = {h.address for h in self.hosts} | {IMDS_ADDRESS, BLACKHOLE_DNS}
        for address in sorted(local):
            self._ns(self.vpc, "addr", "add", address + "/32", "dev", "lo")
        # The instance resolves through the lab resolver only, and sees no host entries but
        # its own.
        etc = os.path.join(NETNS_DIR, self.inst)
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("# ssm-doctor lab %s\nnameserver %s\nsearch ec2.internal\n"
                    "options timeout:2 attempts:2\n" % (self.tag, RESOLVER_ADDRESS))
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                    "10.99.0.10 ip-10-99-0-10.ec2.internal ip-10-99-0-10\n")

    def _apply_packet_faults(self):
        """nftables in the VPC namespace: dropped endpoints, unreachable public addresses, the
        DNS black hole and, for IMDS in drop mode, IMDS."""
        drops = [h.address for h in self.hosts if h.fault == "drop"]
        if self.scenario.imds == "drop":
            drops.append(IMDS_ADDRESS)
        # Without NAT the instance cannot reach public addresses; the proxy (which connects
        # from inside the VPC namespace, not through vpc0) can, as a corporate proxy would.
        no_nat = [h.address for h in self.hosts
                  if h.kind == "public" and not self.scenario.nat and h.address not in drops]
        rules = ["table inet ssmd_lab {",
                 "    chain input {",
                 "        type filter hook input priority 0; policy accept;"]
        for address in sorted(set(drops)):
            rules.append("        ip daddr %s tcp dport { 80, 443 } drop" % address)
        for address in sorted(set(no_nat)):
            rules.append('        iifname "vpc0" ip daddr %s tcp dport 443 drop' % address)
        # Dropped on input, not output: a drop on output fails dnsmasq's send at once, and
        # dnsmasq answers SERVFAIL, where a black hole must leave the client waiting.
        rules += ["        ip daddr %s meta l4proto { tcp, udp } th dport 53 drop" % BLACKHOLE_DNS,
                  "    }",
                  "}"]
        path = os.path.join(self.dir, "faults.nft")
        with open(path, "w") as f:
            f.write("\n".join(rules) + "\n")
        run(["ip", "netns", "exec", self.vpc, "nft", "-f", path])

    # --- services -------------------------------------------------------------------------

    def _spawn(self, args, ready_word=None, log_name=None, timeout=READY_TIMEOUT):
        """Starts a child; with ready_word, waits (bounded) until its first stdout line."""
        log = open(os.path.join(self.dir, log_name), "w") if log_name else subprocess.DEVNULL
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE if ready_word else subprocess.DEVNULL,
                                 stderr=log, preexec_fn=_die_with_parent)
        self.children.append(child)
        if ready_word:
            line = self._read_line(child, timeout)
            if line != ready_word:
                tail = ""
                if log_name:
                    with open(os.path.join(self.dir, log_name), errors="replace") as f:
                        tail = "".join(f.readlines()[-10:])
                raise LabError("%s did not start: %s\n%s" % (
                    " ".join(args[3:6]), line or "no answer within %.0f s" % timeout, tail))
        return child

    @staticmethod
    def _read_line(child, timeout):
        deadline = time.monotonic() + timeout
        buffer = b""
        fd = child.stdout.fileno()
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
        return buffer.decode(errors="replace").strip()

    def _wait_port(self, netns, address, port, protocol="tcp"):
        """Polls until something listens on address:port in netns (bounded)."""
        flag = "-tln" if protocol == "tcp" else "-uln"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            out = run(["ip", "netns", "exec", netns, "ss", flag, "src", "%s:%d" % (address, port)],
                      check=False).stdout
            if len(out.strip().splitlines()) > 1:
                return
            time.sleep(0.05)
        raise LabError("nothing listens on %s:%d (%s) in %s" % (address, port, protocol, netns))

    def _start_resolver(self):
        args = ["ip", "netns", "exec", self.vpc, "dnsmasq", "--keep-in-foreground",
                "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                "--listen-address=" + RESOLVER_ADDRESS, "--pid-file=", "--user=root",
                "--group=root",
                "--log-queries", "--log-facility=" + os.path.join(self.dir, "dnsmasq.log"),
                "--cache-size=0",
                # Every name the lab does not know: NXDOMAIN (the most specific match wins).
                "--address=/#/"]
        for host in self.hosts:
            if host.fault == "nxdomain":
                continue
            if host.fault == "dns_timeout":
                args.append("--server=/%s/%s" % (host.name, BLACKHOLE_DNS))
                continue
            # A host record answers A and, having no IPv6 address, NODATA for AAAA.
            args.append("--host-record=%s,%s" % (host.name, host.address))
        if self.scenario.proxy is not None:
            args.append("--host-record=%s,%s" % (PROXY_NAME, PROXY_ADDRESS))
        self._spawn(args, log_name="dnsmasq.stderr")
        self._wait_port(self.vpc, RESOLVER_ADDRESS, 53, "udp")

    def _make_pki(self):
        self.pki = pki.LabPki(os.path.join(self.dir, "pki"))

    def _start_servers(self):
        s = self.scenario
        listeners = []
        for host in self.hosts:
            if host.fault == "refused":
                continue  # nothing listens: the kernel answers the SYN with RST
            kind = host.fault if host.fault in ("expired", "wrong_host", "unknown_ca") else "good"
            cert, key = self.pki.leaf(host.name, kind)
            behavior = host.fault if host.fault in ("slow", "reset", "silent", "tls10") \
                else "normal"
            listeners.append({"host": host.name, "service": host.service,
                              "address": host.address, "port": 443, "behavior": behavior,
                              "delay_ms": s.delay_ms, "cert": cert, "key": key})
        spec = {"endpoints": listeners, "imds": None}
        if s.imds in ("v2", "v1", "off", "drop"):
            spec["imds"] = {"address": IMDS_ADDRESS, "port": 80, "mode": s.imds,
                            "region": s.region, "instance_id": "i-0123456789abcdef0",
                            "mac": "0e:49:61:0f:c3:11", "vpc_cidrs": [VPC_CIDR],
                            "role": "ssm-doctor-lab-role"}
        if s.proxy is not None:
            spec["proxy"] = {
                "address": PROXY_ADDRESS, "port": PROXY_PORT,
                "hosts": {h.name.lower(): h.address for h in self.hosts
                          if h.fault not in ("nxdomain", "dns_timeout")},
                "deny": [self.host_name(svc).lower() for svc in s.proxy.get("deny", [])]}
        path = os.path.join(self.dir, "servers.json")
        with open(path, "w") as f:
            json.dump(spec, f, indent=2)
        self._spawn(["ip", "netns", "exec", self.vpc, sys.executable, LAB_MAIN, "_serve", path],
                    ready_word="ready", log_name="servers.log")

    # --- the agent ------------------------------------------------------------------------

    def _agent_dirs(self):
        return os.path.join(self.dir, "agent", "bin"), os.path.join(self.dir, "agent", "log")

    def _make_agent_files(self):
        s = self.scenario
        bin_dir, log_dir = self._agent_dirs()
        os.makedirs(bin_dir)
        os.makedirs(log_dir)
        os.makedirs(os.path.join(self.dir, "agent", "etc"))
        if s.agent_state == "not_installed":
            return
        if not self.standin or not os.access(self.standin, os.X_OK):
            raise LabError("the agent stand-in is needed (--standin PATH, target "
                           "lab_agent_standin); got %r" % self.standin)
        for name in ("amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker"):
            shutil.copy2(self.standin, os.path.join(bin_dir, name))
        with open(os.path.join(bin_dir, "VERSION"), "w") as f:
            f.write(s.agent_version + "\n")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        with open(os.path.join(log_dir, "amazon-ssm-agent.log"), "w") as f:
            f.write("%s.0001 INFO [amazon-ssm-agent] amazon-ssm-agent - v%s\n"
                    % (stamp, s.agent_version))
            f.write("%s.0002 INFO [amazon-ssm-agent] OS: linux, Arch: amd64\n" % stamp)
            f.write("%s.0003 INFO [amazon-ssm-agent] [LongRunningWorkerContainer] "
                    "Worker ssm-agent-worker is not running, starting worker process\n" % stamp)
        if self.hibernating():
            with open(os.path.join(log_dir, "hibernate.log"), "w") as f:
                f.write("%s.0004 INFO [ssm-agent-worker] Entering SSM Agent hibernate - "
                        "RequestError: send request failed\ncaused by: Post "
                        "\"https://%s/\": dial tcp %s:443: i/o timeout\n"
                        % (stamp, self.host_name("ssm"), self.host_for("ssm").address))
        if s.agent_config is not None:
            with open(os.path.join(self.dir, "agent", "etc", "amazon-ssm-agent.json"), "w") as f:
                json.dump(s.agent_config, f, indent=4)

    def hibernating(self):
        """The agent hibernates when asked to, and, like the real one, when ssm is out of
        reach."""
        s = self.scenario
        if s.agent_state == "hibernating":
            return True
        return s.agent_state == "running" and not self.reachable(self.host_for("ssm"))

    def agent_sessions(self):
        """{executable name: [services it holds a session to]} as FACTS.md describes."""
        s = self.scenario
        if s.agent_state in ("not_installed", "stopped"):
            return {}
        if self.hibernating():
            return {"amazon-ssm-agent": [], "ssm-agent-worker": []}
        new_agent = _version_tuple(s.agent_version) >= (3, 3, 40, 0)
        worker = ["ssmmessages"] if new_agent else ["ssmmessages", "ec2messages"]
        held = {"amazon-ssm-agent": ["ssm"], "ssm-agent-worker": worker}
        if s.sessions is not None:
            held = dict(s.sessions)
        if s.session_open:
            held["ssm-session-worker"] = ["ssmmessages"]
        return {name: [svc for svc in services if self.reachable(self.host_for(svc))]
                for name, services in held.items()}

    def _start_instance(self):
        bin_dir, _ = self._agent_dirs()
        processes = []
        for name, services in self.agent_sessions().items():
            args = ["--ca", self.pki.ca_file]
            env = {}
            if self.scenario.proxy is not None:
                args += ["--proxy", "%s:%d" % (PROXY_ADDRESS, PROXY_PORT)]
                env = {"HTTPS_PROXY": "http://%s:%d" % (PROXY_NAME, PROXY_PORT),
                       "NO_PROXY": self.scenario.proxy.get("no_proxy", "")}
            for service in services:
                host = self.host_for(service)
                args += ["--hold", "%s:443:%s" % (host.address, host.name)]
            processes.append({"exe": os.path.join(bin_dir, name), "args": args, "env": env})
        spec_path = os.path.join(self.dir, "instance.json")
        with open(spec_path, "w") as f:
            json.dump({"processes": processes, "ready_timeout": 10}, f, indent=2)
        child = self._spawn(["ip", "netns", "exec", self.inst, "unshare", "--pid", "--fork",
                             "--mount-proc", "--kill-child", sys.executable, LAB_MAIN,
                             "_instance", spec_path], ready_word="ready",
                            log_name="instance.log")
        children = []
        deadline = time.monotonic() + 5
        while not children and time.monotonic() < deadline:
            try:
                with open("/proc/%d/task/%d/children" % (child.pid, child.pid)) as f:
                    children = f.read().split()
            except FileNotFoundError:
                break
            if not children:
                time.sleep(0.02)
        if len(children) != 1:
            raise LabError("cannot find process 1 of the instance's PID namespace")
        self.init_pid = int(children[0])

    # --- ssm-doctor -----------------------------------------------------------------------

    def _write_doctor_config(self):
        s = self.scenario
        bin_dir, log_dir = self._agent_dirs()
        lines = ["# ssm-doctor configuration for lab scenario %s" % s.name]
        if s.config_region:
            lines.append("region: %s" % s.config_region)
        lines += ["agent:",
                  "  binary: %s" % os.path.join(bin_dir, "amazon-ssm-agent"),
                  "  config: %s" % os.path.join(self.dir, "agent", "etc",
                                                "amazon-ssm-agent.json"),
                  "  log_dir: %s" % log_dir,
                  "imds:",
                  "  endpoint: http://%s" % IMDS_ADDRESS,
                  "  timeout: 1",
                  "tls:",
                  "  ca_file: %s" % self.pki.ca_file,
                  "probe:",
                  "  timeout: %s" % s.probe_timeout]
        if s.probe_endpoints:
            lines.append("  endpoints: [%s]" % ", ".join(s.probe_endpoints))
        # The events stay in the lab, never in the host's /var/log.
        lines += ["events:",
                  "  file: %s" % os.path.join(self.dir, "events", "events.log")]
        path = os.path.join(self.dir, "ssm-doctor.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def instance_command(self, argv):
        """argv run inside the instance: its network, its PID namespace and /proc, its
        resolv.conf."""
        return ["nsenter", "--target", str(self.init_pid), "--net", "--pid", "--mount",
                "--"] + list(argv)

    def run_doctor(self, binary, extra_args, timeout=60):
        s = self.scenario
        argv = [binary, "check", "--config", self.config_path] + list(extra_args)
        if s.check_timeout:
            argv += ["--timeout", str(s.check_timeout)]
        started = time.monotonic()
        try:
            result = subprocess.run(self.instance_command(argv), capture_output=True, text=True,
                                    timeout=timeout, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise LabError("ssm-doctor did not end within %d s" % timeout)
        result.elapsed = time.monotonic() - started
        result.argv = argv
        return result

    def _log(self, text):
        if self.verbose:
            print("lab: " + text, file=sys.stderr)

    def describe(self):
        lines = ["lab %s (scenario %s), files in %s" % (self.tag, self.scenario.name, self.dir),
                 "  instance namespace %s, VPC namespace %s, instance PID 1 = %s"
                 % (self.inst, self.vpc, self.init_pid)]
        for h in self.hosts:
            state = "reachable" if self.reachable(h) else "unreachable"
            lines.append("  %-60s %-13s %-6s %-11s %s" % (h.name, h.address, h.kind, state,
                                                        h.fault or ""))
        for name, services in self.agent_sessions().items():
            lines.append("  %s holds %s" % (name, ", ".join(services) or "nothing"))
        return "\n".join(lines)


def _version_tuple(text):
    return tuple(int(p) for p in text.split("."))
