# SPDX-License-Identifier: Apache-2.0
"""The lab's scenarios as data: what the simulated VPC holds, and what ssm-doctor must say.

A scenario names the agent (version and state), the services that have an interface VPC
endpoint (their names resolve to 10.99.1.x; the others to a "public" 203.0.113.x address,
reachable only when the scenario has a NAT path), faults per service, the IMDS mode, the agent's
configuration file, and the expected result. Add a scenario by adding an entry to SCENARIOS.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

ALL_SERVICES = ["ssm", "ssmmessages", "ec2messages", "s3", "kms", "logs", "monitoring"]

# The faults a service's endpoint can have, and how the lab makes each (see lab.py).
FAULTS = {
    "nxdomain": "the resolver answers NXDOMAIN for the name",
    "dns_timeout": "the resolver forwards the name into a black hole and never answers",
    "drop": "nftables drops TCP packets to the endpoint's address",
    "refused": "nothing listens on the address: the kernel answers with RST",
    "reset": "the server accepts, reads the ClientHello, then resets (SO_LINGER 0)",
    "silent": "the server accepts TCP and never answers TLS",
    "wrong_host": "the certificate is valid but names another host",
    "expired": "the certificate expired in 2023",
    "unknown_ca": "the certificate comes from an intercepting proxy's CA nobody trusts",
    "tls10": "the server speaks TLS 1.0 only",
    "slow": "the server waits delay_ms before its TLS handshake",
}

# Faults after which a TLS session cannot be held (slow still connects).
BREAKING_FAULTS = set(FAULTS) - {"slow"}

NEW_AGENT = "3.3.380.0"  # the article's agent
LATEST_AGENT = "3.3.1142.0"
OLD_AGENT = "3.1.1927.0"  # the article's downgrade


@dataclass(frozen=True)
class Contains:
    """An expected text that must appear in the value (for details written by libraries)."""
    text: str

    def matches(self, value):
        return isinstance(value, str) and self.text in value

    def __str__(self):
        return "text containing %r" % self.text


@dataclass
class Expect:
    verdict: str
    # Per service: dotted paths into the endpoint's JSON object and the value they must have.
    # Special keys: "sessions" (the number of sessions), "session_processes" (sorted process
    # names holding them), "address_kinds" (sorted kinds of its addresses).
    endpoints: Dict[str, Dict[str, object]] = field(default_factory=dict)
    findings: List[str] = field(default_factory=list)  # ids that must be present
    no_findings: List[str] = field(default_factory=list)  # ids that must be absent
    agent: Dict[str, object] = field(default_factory=dict)  # dotted paths into "agent"
    top: Dict[str, object] = field(default_factory=dict)  # dotted paths into the whole report
    max_seconds: Optional[float] = None  # wall time of the check, when it is the point


@dataclass
class Scenario:
    name: str
    description: str
    expect: Expect
    region: str = "us-east-1"
    domain: str = "amazonaws.com"  # the agent's Agent.ServiceDomain, when set
    agent_version: Optional[str] = NEW_AGENT
    # running, not_installed, stopped (installed, not running), hibernating
    agent_state: str = "running"
    session_open: bool = False  # an ssm-session-worker holds a data channel to ssmmessages
    # Replaces the sessions FACTS.md gives this version: executable -> services it holds.
    sessions: Optional[Dict[str, List[str]]] = None
    vpc_endpoints: List[str] = field(default_factory=lambda: ["ssm", "ssmmessages",
                                                              "ec2messages"])
    nat: bool = False  # the public addresses are reachable
    faults: Dict[str, str] = field(default_factory=dict)  # service -> fault
    delay_ms: int = 0  # for the slow fault
    imds: str = "v2"  # v2, v1 (no token service), off (403), down (refused), drop (timeout)
    config_region: Optional[str] = None  # region in ssm-doctor's own configuration
    agent_config: Optional[dict] = None  # amazon-ssm-agent.json, absent when None
    # Hosts the agent uses instead of <service>.<region>.<domain>, from agent_config; each
    # resolves to a VPC endpoint address of its own.
    overrides: Dict[str, str] = field(default_factory=dict)
    # The agent's HTTPS_PROXY (proxy.corp.internal:3128, a CONNECT proxy in the VPC that
    # reaches every endpoint): {"no_proxy": "...", "deny": [services it refuses]}.
    proxy: Optional[dict] = None
    probe_endpoints: Optional[List[str]] = None  # ssm-doctor's probe.endpoints, default if None
    probe_timeout: float = 2.0
    check_timeout: Optional[float] = None  # ssm-doctor check --timeout


def _fault_scenario(fault, reason, phase, extra=None):
    service = "ssmmessages"
    endpoint = {"required": "required", "reachable": False, "failure.reason": reason,
                "failure.phase": phase, "sessions": 0}
    endpoint.update(extra or {})
    return Scenario(
        name="fault-" + fault.replace("_", "-"),
        description="%s on the required %s endpoint: %s" % (fault, service, FAULTS[fault]),
        faults={service: fault},
        expect=Expect(verdict="critical", endpoints={
            service: endpoint,
            "ssm": {"required": "required", "reachable": True},
        }, findings=["required_endpoint_unreachable"],
            no_findings=["control_channel_missing", "agent_hibernating"]),
    )


SCENARIOS = [
    # The four steps of the article's experiment (FACTS.md).
    Scenario(
        name="article",
        description="agent 3.3.380.0, endpoints for ssm and ssmmessages only, a session open "
                    "(the article's first step)",
        vpc_endpoints=["ssm", "ssmmessages"],
        session_open=True,
        expect=Expect(verdict="ok", endpoints={
            "ssm": {"required": "required", "reachable": True, "session_processes":
                    ["amazon-ssm-agent"]},
            "ssmmessages": {"required": "required", "reachable": True,
                            "session_processes": ["ssm-agent-worker", "ssm-session-worker"],
                            "address_kinds": ["private"]},
            "ec2messages": {"required": "not_required", "reachable": False, "sessions": 0,
                            "address_kinds": ["public"], "failure.reason": "timeout"},
        }, agent={"installed": True, "running": True, "version": NEW_AGENT},
            findings=["ec2messages_unreachable_not_needed"],
            no_findings=["required_endpoint_unreachable", "control_channel_missing",
                         "ec2messages_endpoint_unused"]),
    ),
    Scenario(
        name="old-agent-without-ec2messages",
        description="agent 3.1.1927.0, endpoints for ssm and ssmmessages only (step two)",
        agent_version=OLD_AGENT,
        vpc_endpoints=["ssm", "ssmmessages"],
        expect=Expect(verdict="critical", endpoints={
            "ssmmessages": {"required": "required", "reachable": True, "sessions": 1},
            "ec2messages": {"required": "required", "reachable": False, "sessions": 0},
        }, agent={"version": OLD_AGENT},
            findings=["required_endpoint_unreachable", "ec2messages_needed_by_old_agent"]),
    ),
    Scenario(
        name="old-agent-with-ec2messages",
        description="agent 3.1.1927.0 with all three endpoints, sessions to ssmmessages and "
                    "ec2messages (step three)",
        agent_version=OLD_AGENT,
        expect=Expect(verdict="ok", endpoints={
            "ssmmessages": {"required": "required", "reachable": True,
                            "session_processes": ["ssm-agent-worker"]},
            "ec2messages": {"required": "required", "reachable": True,
                            "session_processes": ["ssm-agent-worker"]},
        }, findings=["ec2messages_needed_by_old_agent"],
            no_findings=["ec2messages_session_missing", "ec2messages_endpoint_unused"]),
    ),
    Scenario(
        name="upgraded-ec2messages-unused",
        description="agent 3.3.1142.0 with all three endpoints: ec2messages unused (step four)",
        agent_version=LATEST_AGENT,
        expect=Expect(verdict="ok", endpoints={
            "ssmmessages": {"required": "required", "reachable": True,
                            "session_processes": ["ssm-agent-worker"]},
            "ec2messages": {"required": "not_required", "reachable": True, "sessions": 0},
        }, findings=["ec2messages_endpoint_unused"],
            no_findings=["ec2messages_still_polled", "ec2messages_needed_by_old_agent"]),
    ),
    Scenario(
        name="new-agent-startup-polling",
        description="agent 3.3.1142.0 just started: its worker still polls ec2messages next "
                    "to the control channel, which is normal for about a minute",
        agent_version=LATEST_AGENT,
        sessions={"amazon-ssm-agent": ["ssm"],
                  "ssm-agent-worker": ["ssmmessages", "ec2messages", "ssm"]},
        expect=Expect(verdict="ok", endpoints={
            "ec2messages": {"required": "not_required", "sessions": 1},
            "ssm": {"session_processes": ["amazon-ssm-agent", "ssm-agent-worker"]},
        }, findings=["ec2messages_startup_polling"],
            no_findings=["ec2messages_endpoint_unused", "ec2messages_still_polled"]),
    ),
    Scenario(
        name="control-channel-missing",
        description="every endpoint works, but the worker holds no ssmmessages connection "
                    "(as when the role lacks ssmmessages permissions)",
        sessions={"amazon-ssm-agent": ["ssm"], "ssm-agent-worker": []},
        expect=Expect(verdict="warning", endpoints={
            "ssmmessages": {"required": "required", "reachable": True, "sessions": 0},
        }, findings=["control_channel_missing"], no_findings=["agent_hibernating"]),
    ),
    # The agent behind an HTTP proxy, no VPC endpoints.
    Scenario(
        name="proxy",
        description="no VPC endpoints; the agent's HTTPS_PROXY is a CONNECT proxy that "
                    "reaches every endpoint",
        vpc_endpoints=[],
        proxy={"no_proxy": "169.254.169.254,localhost"},
        expect=Expect(verdict="ok", endpoints={
            "ssm": {"via_proxy": True, "reachable": True},
            "ssmmessages": {"via_proxy": True, "reachable": True},
        }, agent={"proxy.no_proxy": "169.254.169.254,localhost"},
            findings=["agent_uses_proxy"],
            no_findings=["proxy_without_imds_exclusion", "control_channel_missing"]),
    ),
    Scenario(
        name="proxy-denies-ssmmessages",
        description="the agent's proxy answers 403 to CONNECT ssmmessages",
        vpc_endpoints=[],
        proxy={"no_proxy": "169.254.169.254", "deny": ["ssmmessages"]},
        expect=Expect(verdict="critical", endpoints={
            "ssm": {"via_proxy": True, "reachable": True},
            "ssmmessages": {"via_proxy": True, "reachable": False,
                            "failure.phase": "proxy", "failure.reason": "proxy_refused"},
        }, findings=["agent_uses_proxy", "required_endpoint_unreachable"]),
    ),
    Scenario(
        name="proxy-without-imds-exclusion",
        description="the agent's NO_PROXY is empty, so its IMDS requests would go to the proxy",
        vpc_endpoints=[],
        proxy={"no_proxy": ""},
        expect=Expect(verdict="warning", findings=["agent_uses_proxy",
                                                   "proxy_without_imds_exclusion"]),
    ),
    # Every fault on a required endpoint.
    _fault_scenario("nxdomain", "nxdomain", "dns"),
    _fault_scenario("dns_timeout", "dns_timeout", "dns"),
    _fault_scenario("drop", "timeout", "connect"),
    _fault_scenario("refused", "refused", "connect"),
    _fault_scenario("reset", "reset", "tls"),
    _fault_scenario("silent", "timeout", "tls"),
    # OpenSSL's own words tell the three verification failures apart.
    _fault_scenario("wrong_host", "tls_verify_failed", "tls",
                    {"failure.detail": Contains("hostname mismatch")}),
    _fault_scenario("expired", "tls_verify_failed", "tls",
                    {"failure.detail": Contains("certificate has expired")}),
    _fault_scenario("unknown_ca", "tls_verify_failed", "tls",
                    {"failure.detail": Contains("unable to get local issuer certificate")}),
    _fault_scenario("tls10", "tls_handshake_failed", "tls",
                    {"failure.detail": Contains("protocol version")}),
    Scenario(
        name="fault-slow",
        description="the ssmmessages endpoint answers its handshake after 700 ms",
        faults={"ssmmessages": "slow"},
        delay_ms=700,
        expect=Expect(verdict="ok", endpoints={
            "ssmmessages": {"required": "required", "reachable": True, "sessions": 1},
        }, no_findings=["required_endpoint_unreachable"]),
    ),
    Scenario(
        name="public-only",
        description="ssmmessages has no VPC endpoint; its name resolves to a public address "
                    "reached through NAT",
        vpc_endpoints=["ssm", "ec2messages"],
        nat=True,
        expect=Expect(verdict="warning", endpoints={
            "ssmmessages": {"required": "required", "reachable": True,
                            "address_kinds": ["public"], "addresses.0.in_vpc": False,
                            "sessions": 1},
        }, findings=["private_dns_missing"]),
    ),
    Scenario(
        name="imds-down",
        description="nothing answers at 169.254.169.254; the region comes from ssm-doctor's "
                    "configuration",
        imds="down",
        config_region="us-east-1",
        expect=Expect(verdict="ok", top={"region": "us-east-1", "region_source": "config",
                                         "imds.reachable": False}, endpoints={
            "ssm": {"required": "required", "reachable": True},
        }, findings=["imds_unreachable"]),
    ),
    Scenario(
        name="imds-v1-only",
        description="the metadata service has no token service (IMDSv1 only)",
        imds="v1",
        expect=Expect(verdict="ok", top={"region": "us-east-1", "region_source": "imds",
                                         "imds.reachable": True, "imds.imdsv2": False},
                      endpoints={"ssm": {"required": "required", "reachable": True}},
                      no_findings=["imds_unreachable", "region_unknown"]),
    ),
    Scenario(
        name="agent-not-installed",
        description="no agent binary, no processes",
        agent_state="not_installed",
        expect=Expect(verdict="critical", agent={"installed": False, "running": False},
                      findings=["agent_not_installed"]),
    ),
    Scenario(
        name="agent-stopped",
        description="the agent is installed but not running",
        agent_state="stopped",
        expect=Expect(verdict="critical", agent={"installed": True, "running": False,
                                                 "version": NEW_AGENT},
                      findings=["agent_not_running"], no_findings=["agent_not_installed"]),
    ),
    Scenario(
        name="agent-hibernating",
        description="ssm drops packets; the agent hibernates (no sessions, hibernate.log)",
        agent_state="hibernating",
        faults={"ssm": "drop"},
        expect=Expect(verdict="critical", endpoints={
            "ssm": {"required": "required", "reachable": False, "failure.reason": "timeout",
                    "failure.phase": "connect"},
            "ssmmessages": {"reachable": True, "sessions": 0},
        }, agent={"running": True}, findings=["agent_hibernating",
                                              "required_endpoint_unreachable"],
            no_findings=["control_channel_missing"]),
    ),
    Scenario(
        name="override-mgs-endpoint",
        description="private DNS is off; the agent's Mgs.Endpoint names the ssmmessages "
                    "endpoint's own DNS name, which is probed instead of the default",
        vpc_endpoints=["ssm", "ec2messages"],
        overrides={"ssmmessages":
                   "vpce-0a1b2c3d4e5f60718-lab00001.ssmmessages.us-east-1.vpce.amazonaws.com"},
        agent_config={"Mgs": {"Endpoint": "https://vpce-0a1b2c3d4e5f60718-lab00001."
                                          "ssmmessages.us-east-1.vpce.amazonaws.com"}},
        expect=Expect(verdict="ok", endpoints={
            "ssmmessages": {"overridden": True, "reachable": True, "sessions": 1,
                            "host": "vpce-0a1b2c3d4e5f60718-lab00001.ssmmessages.us-east-1."
                                    "vpce.amazonaws.com", "override_key": "Mgs.Endpoint",
                            "default_host": "ssmmessages.us-east-1.amazonaws.com"},
            "ssm": {"overridden": False},
        }, findings=["endpoint_overridden"], no_findings=["required_endpoint_unreachable"]),
    ),
    Scenario(
        name="override-service-domain",
        description="Agent.ServiceDomain is amazonaws.example: every host is built on it",
        domain="amazonaws.example",
        agent_config={"Agent": {"ServiceDomain": "amazonaws.example"}},
        expect=Expect(verdict="ok", endpoints={
            "ssm": {"overridden": True, "host": "ssm.us-east-1.amazonaws.example",
                    "reachable": True},
            "ssmmessages": {"overridden": True, "host": "ssmmessages.us-east-1.amazonaws.example",
                            "reachable": True, "sessions": 1,
                            "override_key": "Agent.ServiceDomain"},
        }, findings=["endpoint_overridden"]),
    ),
    Scenario(
        name="new-region-old-agent",
        description="ap-southeast-7 (a region launched in 2024 or later) with agent "
                    "3.1.1927.0: ec2messages cannot be used there",
        region="ap-southeast-7",
        agent_version=OLD_AGENT,
        expect=Expect(verdict="critical", top={"region": "ap-southeast-7"}, endpoints={
            "ec2messages": {"required": "unsupported"},
        }, findings=["agent_too_old_for_region", "ec2messages_unsupported_region"]),
    ),
    Scenario(
        name="all-drop",
        description="every endpoint and IMDS drop packets; probes may wait 30 s, the check "
                    "must still end by its 4 s deadline",
        faults={s: "drop" for s in ALL_SERVICES},
        probe_endpoints=ALL_SERVICES,
        agent_state="hibernating",
        imds="drop",
        config_region="us-east-1",
        probe_timeout=30,
        check_timeout=4,
        expect=Expect(verdict="critical", max_seconds=5.0, endpoints={
            "ssm": {"reachable": False, "failure.reason": "timeout"},
            "ssmmessages": {"reachable": False, "failure.reason": "timeout"},
        }, findings=["required_endpoint_unreachable", "agent_hibernating"]),
    ),
    Scenario(
        name="slow-all",
        description="all seven endpoints have VPC endpoints and answer after 300 ms "
                    "(for benchmarks)",
        vpc_endpoints=ALL_SERVICES,
        faults={s: "slow" for s in ALL_SERVICES},
        delay_ms=300,
        probe_endpoints=ALL_SERVICES,
        expect=Expect(verdict="ok", endpoints={
            s: {"reachable": True} for s in ALL_SERVICES
        }, no_findings=["optional_endpoint_unreachable"]),
    ),
]

BY_NAME = {s.name: s for s in SCENARIOS}
DEFAULT = "article"
