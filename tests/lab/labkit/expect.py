# SPDX-License-Identifier: Apache-2.0
"""Compares ssm-doctor's JSON report with a scenario's expectations and lists every difference."""

import json

from .scenarios import Contains, Expect

EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
_MISSING = object()


def lookup(value, path):
    """The value at a dotted path ("failure.reason", "addresses.0.in_vpc"), or _MISSING."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif value is None:
            return None  # "failure.reason" of an endpoint without failure
        else:
            return _MISSING
    return value


def endpoint_value(endpoint, key):
    sessions = endpoint.get("sessions") or []
    if key == "sessions":
        return len(sessions)
    if key == "session_processes":
        return sorted({s.get("process") for s in sessions})
    if key == "address_kinds":
        return sorted({a.get("kind") for a in endpoint.get("addresses") or []})
    return lookup(endpoint, key)


def _show(value):
    if isinstance(value, Contains):
        return str(value)
    return "(missing)" if value is _MISSING else json.dumps(value)


def _matches(want, got):
    if isinstance(want, Contains):
        return want.matches(got)
    return want == got


def compare(expect: Expect, report, exit_code, elapsed):
    """A list of differences, empty when the report meets every expectation."""
    problems = []
    if report.get("schema_version") != 1:
        problems.append("schema_version: expected 1, got %s"
                        % _show(report.get("schema_version", _MISSING)))
    if report.get("verdict") != expect.verdict:
        problems.append("verdict: expected %s, got %s" % (_show(expect.verdict),
                                                          _show(report.get("verdict", _MISSING))))
    if exit_code != EXIT_CODES[expect.verdict]:
        problems.append("exit code: expected %d (%s), got %d" % (
            EXIT_CODES[expect.verdict], expect.verdict, exit_code))
    for path, want in expect.top.items():
        got = lookup(report, path)
        if not _matches(want, got):
            problems.append("%s: expected %s, got %s" % (path, _show(want), _show(got)))
    for path, want in expect.agent.items():
        got = lookup(report.get("agent") or {}, path)
        if not _matches(want, got):
            problems.append("agent.%s: expected %s, got %s" % (path, _show(want), _show(got)))
    endpoints = {e.get("service"): e for e in report.get("endpoints") or []}
    for service, fields in expect.endpoints.items():
        endpoint = endpoints.get(service)
        if endpoint is None:
            problems.append("endpoint %s: not in the report" % service)
            continue
        for key, want in fields.items():
            got = endpoint_value(endpoint, key)
            if not _matches(want, got):
                problems.append("endpoint %s: %s: expected %s, got %s" % (
                    service, key, _show(want), _show(got)))
    ids = [f.get("id") for f in report.get("findings") or []]
    for wanted in expect.findings:
        if wanted not in ids:
            problems.append("finding %s: expected, absent (present: %s)" % (
                wanted, ", ".join(ids) or "none"))
    for unwanted in expect.no_findings:
        if unwanted in ids:
            problems.append("finding %s: present, expected absent" % unwanted)
    if expect.max_seconds is not None and elapsed > expect.max_seconds:
        problems.append("the check took %.2f s, more than %.2f s" % (elapsed, expect.max_seconds))
    return problems


def summary(report):
    """A few lines that show what the report said, printed next to a failure."""
    lines = ["verdict %s, region %s, agent %s" % (
        report.get("verdict"), report.get("region"),
        json.dumps({k: (report.get("agent") or {}).get(k)
                    for k in ("installed", "version", "running")}))]
    for e in report.get("endpoints") or []:
        failure = e.get("failure") or {}
        lines.append("  %-12s %-13s reachable=%-5s %s %s sessions=%d %s" % (
            e.get("service"), e.get("required"), e.get("reachable"),
            ",".join("%s/%s" % (a.get("ip"), a.get("kind")) for a in e.get("addresses") or []),
            "%s:%s" % (failure.get("phase"), failure.get("reason")) if failure else "",
            len(e.get("sessions") or []), e.get("host")))
    for f in report.get("findings") or []:
        lines.append("  finding %s (%s%s)" % (f.get("id"), f.get("severity"),
                                             ", " + f["service"] if f.get("service") else ""))
    return "\n".join(lines)
