# SPDX-License-Identifier: Apache-2.0
"""Checks the lab itself, without ssm-doctor: each fault does what it claims, IMDS answers per
its mode, and the stand-ins hold the sessions the scenario says.

A small independent client (probe_main, run inside the instance namespace) resolves through
the instance's resolv.conf, connects, shakes hands and sends one HTTP request, and names a
failure in ssm-doctor's own vocabulary (phase and reason), so it can be compared with the
scenarios' expectations.
"""

import json
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import time

from . import scenarios
from . import LabError
from .lab import IMDS_ADDRESS, PROXY_ADDRESS, PROXY_NAME, PROXY_PORT, Lab


def _skip_name(message, at):
    """The offset after a (possibly compressed) domain name."""
    while True:
        length = message[at]
        if length == 0:
            return at + 1
        if length >= 0xC0:
            return at + 2
        at += length + 1


def _dns_query(name, server, timeout):
    """rcode and IPv4 addresses of an A query, or raises socket.timeout."""
    ident = random.randint(0, 0xFFFF)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    message = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(message, (server, 53))
        while True:
            answer, _ = s.recvfrom(4096)
            if answer[:2] == message[:2]:
                break
    flags, _, count = struct.unpack(">HHH", answer[2:8])
    at = 12 + len(question) + 4
    addresses = []
    for _ in range(count):
        at = _skip_name(answer, at)
        rtype, _, _, length = struct.unpack(">HHIH", answer[at:at + 10])
        at += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(answer[at:at + 4]))
        at += length
    return flags & 0xF, addresses


def probe(host, ca_file, timeout):
    """What a careful client sees of https://host/: a dict with ok, phase, reason, ms, status."""
    result = {"host": host, "ok": False}
    with open("/etc/resolv.conf") as f:
        server = next(line.split()[1] for line in f if line.startswith("nameserver"))
    started = time.monotonic()
    try:
        rcode, addresses = _dns_query(host, server, timeout)
    except socket.timeout:
        return dict(result, phase="dns", reason="dns_timeout")
    if rcode == 3:
        return dict(result, phase="dns", reason="nxdomain")
    if rcode != 0 or not addresses:
        return dict(result, phase="dns", reason="servfail" if rcode else "no_address")
    result["address"] = addresses[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((addresses[0], 443))
    except socket.timeout:
        return dict(result, phase="connect", reason="timeout")
    except ConnectionRefusedError:
        return dict(result, phase="connect", reason="refused")
    except OSError as e:
        return dict(result, phase="connect", reason="unreachable", detail=str(e))
    context = ssl.create_default_context(cafile=ca_file)
    tls_started = time.monotonic()
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        return dict(result, phase="tls", reason="tls_verify_failed", detail=e.verify_message)
    except ssl.SSLError as e:
        return dict(result, phase="tls", reason="tls_handshake_failed", detail=e.reason)
    except socket.timeout:
        return dict(result, phase="tls", reason="timeout")
    except (ConnectionResetError, ssl.SSLEOFError) as e:
        return dict(result, phase="tls", reason="reset", detail=str(e))
    result["tls_ms"] = round((time.monotonic() - tls_started) * 1000)
    result["version"] = tls.version()
    with tls:
        tls.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: lab-selftest\r\n\r\n"
                     % host).encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = tls.recv(4096)
            if not chunk:
                break
            head += chunk
        head = head.decode("latin-1")
    has_request_id = "x-amzn-requestid:" in head.lower() or "x-amz-request-id:" in head.lower()
    if not head.startswith("HTTP/1.1 ") or not has_request_id:
        return dict(result, phase="http", reason="http_error", detail=head[:80])
    result["status"] = int(head.split(" ")[1])
    result["ms"] = round((time.monotonic() - started) * 1000)
    result["ok"] = True
    return result


def probe_main(args):
    """`lab.py _probe CA_FILE TIMEOUT HOST...`: one JSON line per host."""
    ca_file, timeout, hosts = args[0], float(args[1]), args[2:]
    for host in hosts:
        print(json.dumps(probe(host, ca_file, timeout)), flush=True)
    return 0


def _inside(lab, argv, timeout=30):
    return subprocess.run(lab.instance_command(argv), capture_output=True, text=True,
                          timeout=timeout)


def _imds(lab, method, path, headers=()):
    argv = ["curl", "-s", "-m", "2", "-o", "/dev/null", "-D", "-", "-X", method]
    for h in headers:
        argv += ["-H", h]
    out = _inside(lab, argv + ["http://%s%s" % (IMDS_ADDRESS, path)]).stdout
    return out.splitlines()[0].strip() if out else "no answer", out


def check_scenario(lab, problems):
    s = lab.scenario
    say = lambda text: problems.append("%s: %s" % (s.name, text))  # noqa: E731
    services = ["ssm", "ssmmessages", "ec2messages"]
    hosts = [lab.host_name(svc) for svc in services]
    if s.proxy is not None:
        check_proxy(lab, services, say)
        hosts = []  # the direct path is not what these scenarios are about
    argv = [sys.executable, os.path.abspath(sys.argv[0]), "_probe", lab.pki.ca_file, "2.5"]
    seen = [json.loads(line) for line in _inside(lab, argv + hosts).stdout.splitlines()]
    if len(seen) != len(hosts):
        say("the probe gave %d answers for %d hosts" % (len(seen), len(hosts)))
        return
    for svc, got in zip(services if hosts else [], seen):
        host = lab.host_for(svc)
        want = s.expect.endpoints.get(svc, {})
        if host.fault and host.fault != "slow":
            wanted = {k.split(".")[1]: v for k, v in want.items()
                      if k in ("failure.phase", "failure.reason")}
            if {k: got.get(k) for k in wanted} != wanted:
                say("%s (%s): expected %s, the lab gave %s" % (svc, host.fault, wanted, got))
        elif lab.reachable(host) != got["ok"]:
            say("%s: expected %s, got %s" % (
                svc, "reachable" if lab.reachable(host) else "unreachable", got))
        if host.fault == "slow" and got.get("tls_ms", 0) < s.delay_ms:
            say("%s: slow by %d ms expected, handshake took %s ms" % (svc, s.delay_ms,
                                                                      got.get("tls_ms")))
    # The sessions the stand-ins hold, by executable, as ss shows them inside the instance.
    out = _inside(lab, ["ss", "-Htnp", "state", "established"]).stdout
    held = {}
    for line in out.splitlines():
        fields = line.split()
        remote = fields[3].rsplit(":", 1)[0]
        for name in ("amazon-ssm-agen", "ssm-agent-worke", "ssm-session-wor"):
            if '"%s"' % name in line:
                held.setdefault(name, []).append(remote)
    for name, services_held in lab.agent_sessions().items():
        want = sorted(PROXY_ADDRESS if s.proxy is not None else lab.host_for(svc).address
                      for svc in services_held)
        if sorted(held.get(name[:15], [])) != want:
            say("%s holds %s, expected %s" % (name, held.get(name[:15], []), want))
    if s.agent_state not in ("not_installed",):
        out = subprocess.run([os.path.join(lab.dir, "agent", "bin", "amazon-ssm-agent"),
                              "-version"], capture_output=True, text=True).stdout
        if out.strip() != "SSM Agent version: " + s.agent_version:
            say("-version printed %r" % out)
    # IMDS per mode.
    status, head = _imds(lab, "PUT", "/latest/api/token",
                         ["X-aws-ec2-metadata-token-ttl-seconds: 21600"])
    wanted = {"v2": "HTTP/1.1 200 OK", "v1": "HTTP/1.1 404 Not Found",
              "off": "HTTP/1.1 403 Forbidden", "down": "no answer", "drop": "no answer"}[s.imds]
    if status != wanted:
        say("IMDS token PUT: expected %r, got %r" % (wanted, status))
    if s.imds == "v2" and "x-aws-ec2-metadata-token-ttl-seconds: 21600" not in head.lower():
        say("IMDS token PUT does not echo the TTL header")
    if s.imds in ("v2", "v1"):
        status, _ = _imds(lab, "GET", "/latest/dynamic/instance-identity/document")
        wanted = "HTTP/1.1 401 Unauthorized" if s.imds == "v2" else "HTTP/1.1 200 OK"
        if status != wanted:
            say("IMDS GET without a token: expected %r, got %r" % (wanted, status))


def check_proxy(lab, services, say):
    """Through the proxy: an endpoint's answer for allowed hosts, 403 for denied ones."""
    for svc in services:
        argv = ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_connect} %{http_code}",
                "-x", "http://%s:%d" % (PROXY_NAME, PROXY_PORT), "--cacert", lab.pki.ca_file,
                "https://%s/" % lab.host_name(svc)]
        got = _inside(lab, argv).stdout.strip()
        want = "200 400" if lab.reachable(lab.host_for(svc)) else "403 000"
        if got != want:
            say("%s through the proxy: expected %r (CONNECT, endpoint), got %r"
                % (svc, want, got))


SELFTEST_SCENARIOS = [s.name for s in scenarios.SCENARIOS if s.name.startswith("fault-")] + [
    "article", "old-agent-with-ec2messages", "override-mgs-endpoint", "imds-v1-only",
    "imds-down", "agent-hibernating", "public-only", "proxy", "proxy-denies-ssmmessages",
    "new-agent-startup-polling", "control-channel-missing", "override-service-domain",
    "new-region-old-agent"]


def main(standin, names=None):
    problems = []
    for name in names or SELFTEST_SCENARIOS:
        started = time.monotonic()
        before = len(problems)
        try:
            with Lab(scenarios.BY_NAME[name], standin=standin) as lab:
                check_scenario(lab, problems)
        except LabError as e:
            problems.append("%s: %s" % (name, e))
        print("%s %s (%.1f s)" % ("ok  " if len(problems) == before else "FAIL", name,
                                  time.monotonic() - started), flush=True)
    for p in problems:
        print("  - " + p)
    return 1 if problems else 0
