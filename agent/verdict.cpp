// SPDX-License-Identifier: Apache-2.0
// The verdict: which endpoints this agent needs, what is broken, and what to do about it.
#include "agent/verdict.hpp"

#include <utility>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "probes/proxy.hpp"

namespace ssm_doctor {
namespace {

using std::chrono::system_clock;
using time_point = system_clock::time_point;

constexpr std::string_view supervisor_exe = "amazon-ssm-agent";
constexpr std::string_view worker_exe = "ssm-agent-worker";

// Every piece is text already; numbers go through std::to_string at the call site.
template <typename... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    (out.append(std::string_view{parts}), ...);
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) {
            out.append(separator);
        }
        out.append(item);
    }
    return out;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// Calendar arithmetic only: turning a time point into text reads no clock.
std::string format_utc(time_point t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    const std::chrono::hh_mm_ss hms{std::chrono::floor<std::chrono::seconds>(t - day)};
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02u-%02u %02ld:%02ld:%02ld UTC",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                  static_cast<long>(hms.minutes().count()),
                  static_cast<long>(hms.seconds().count()));
    return text;
}

// "45 s", "12 min", "5 h", "3 days": precise enough for a person, stable for tests.
std::string format_duration(std::chrono::seconds d) {
    long long s = d.count() < 0 ? -d.count() : d.count();
    if (s < 120) {
        return std::to_string(s) + " s";
    }
    if (s < 2 * 3600) {
        return std::to_string(s / 60) + " min";
    }
    if (s < 48 * 3600) {
        return std::to_string(s / 3600) + " h";
    }
    return std::to_string(s / 86400) + " days";
}

std::string connections(std::size_t n) {
    return std::to_string(n) + (n == 1 ? " connection" : " connections");
}

std::string failure_text(const probe_failure& f) {
    std::string out = cat(to_string(f.phase), " failed (", to_string(f.reason), ")");
    if (!f.detail.empty()) {
        out += cat(": ", f.detail);
    }
    return out;
}

// An address that belongs to a VPC: private IPv4, ULA, or inside the VPC's CIDR blocks.
bool internal_address(const address_observation& a) {
    return a.kind == address_kind::private_v4 || a.kind == address_kind::ula || a.in_vpc == true;
}

// What each endpoint is for, in the words an operator knows.
std::string_view service_role(service svc) {
    switch (svc) {
        case service::ssm:
            return "registration, health pings and command status";
        case service::ssmmessages:
            return "the control channel and Session Manager sessions";
        case service::ec2messages:
            return "polling for commands (agents before 3.3.40.0)";
        case service::s3:
            return "Run Command output in S3, patching and agent updates";
        case service::kms:
            return "Session Manager encryption with a KMS key";
        case service::logs:
            return "session and command output in CloudWatch Logs";
        case service::monitoring:
            return "CloudWatch metrics";
    }
    return "";
}

// The checks share what they read; judge() builds one of these per call.
class judgement {
public:
    judgement(const observations& seen, const verdict_policy& policy, time_point now)
        : seen_(seen), policy_(policy), now_(now) {
        for (const auto& ep : seen_.endpoints) {
            needs_.push_back(
                requirement_for(ep.target.svc, seen_.agent.version, seen_.region, policy_));
        }
    }

    const std::vector<requirement>& requirements() const { return needs_; }

    std::vector<finding> run() {
        check_region();
        check_agent_config();
        check_agent();
        check_proxy();
        check_attribution();
        for (std::size_t i = 0; i < seen_.endpoints.size(); ++i) {
            check_endpoint(seen_.endpoints[i], needs_[i]);
        }
        check_hibernation();
        check_worker();
        check_control_channel();
        check_ec2messages_use();
        return std::move(out_);
    }

private:
    // --- shared facts --------------------------------------------------------------------

    std::string region_text() const { return seen_.region.value_or("<region>"); }

    std::string endpoint_service(service svc) const {
        return vpc_endpoint_service(region_text(), svc);
    }

    const agent_process* process(std::string_view name) const {
        for (const auto& p : seen_.agent.processes) {
            if (p.name == name) {
                return &p;
            }
        }
        return nullptr;
    }

    bool supervisor_running() const { return process(supervisor_exe) != nullptr; }
    const agent_process* worker() const { return process(worker_exe); }

    const endpoint_observation* endpoint(service svc) const {
        for (const auto& ep : seen_.endpoints) {
            if (ep.target.svc == svc) {
                return &ep;
            }
        }
        return nullptr;
    }

    requirement need(service svc) const {
        for (std::size_t i = 0; i < seen_.endpoints.size(); ++i) {
            if (seen_.endpoints[i].target.svc == svc) {
                return needs_[i];
            }
        }
        return requirement_for(svc, seen_.agent.version, seen_.region, policy_);
    }

    bool attribution_complete() const {
        return seen_.sockets.table_read && seen_.sockets.attribution_complete;
    }

    // Missing sessions mean something only when every connection has its owner and the agent
    // talks to the endpoint directly; through a proxy its connections go to the proxy.
    bool absence_tells(const endpoint_observation& ep) const {
        return attribution_complete() && !ep.via_proxy;
    }

    bool any_agent_session() const {
        if (!seen_.proxy_sessions.empty()) {
            return true;
        }
        return std::any_of(seen_.endpoints.begin(), seen_.endpoints.end(),
                           [](const auto& ep) { return !ep.sessions.empty(); });
    }

    bool reachable(service svc) const {
        const auto* ep = endpoint(svc);
        return ep != nullptr && ep->probed && ep->reachable();
    }

    bool unreachable(service svc) const {
        const auto* ep = endpoint(svc);
        return ep != nullptr && ep->probed && !ep->reachable();
    }

    bool has_session(service svc) const {
        const auto* ep = endpoint(svc);
        return ep != nullptr && !ep->sessions.empty();
    }

    std::string region_source_text() const {
        const auto& source = seen_.region_source;
        if (source == "option") {
            return "the command line";
        }
        if (source == "config") {
            return "ssm-doctor.yaml";
        }
        if (source == "agent_config") {
            return "the agent's config (Agent.Region)";
        }
        if (source == "imds") {
            return "IMDS";
        }
        return source.empty() ? std::string("elsewhere") : source;
    }

    std::string version_text() const {
        return seen_.agent.version ? seen_.agent.version->to_string() : std::string("unknown");
    }

    bool old_agent() const {
        return seen_.agent.version && *seen_.agent.version < ec2messages_optional_from;
    }

    std::string agent_config_path() const {
        return seen_.agent_config.path.empty()
                   ? std::string("/etc/amazon/ssm/amazon-ssm-agent.json")
                   : seen_.agent_config.path.string();
    }

    std::string redacted_proxy() const {
        return seen_.agent.proxy ? redact_proxy_url(seen_.agent.proxy->https_proxy) : std::string();
    }

    std::string restart_command() const {
        if (seen_.agent.method == install_method::snap) {
            return "sudo snap restart amazon-ssm-agent";
        }
        return "sudo systemctl restart amazon-ssm-agent";
    }

    // Resolved only to public addresses: no VPC endpoint answers for this name in this VPC.
    bool public_only(const endpoint_observation& ep) const {
        if (ep.via_proxy || ep.addresses.empty()) {
            return false;
        }
        bool outside = false;
        for (const auto& a : ep.addresses) {
            if (internal_address(a)) {
                return false;
            }
            // A VPC's IPv6 addresses are global too: a global IPv6 address is public only when
            // the VPC's IPv6 blocks are known and it is outside them.
            outside = outside || (a.kind == address_kind::public_address &&
                                  (a.ip.is_v4() || a.in_vpc == false));
        }
        return outside;
    }

    // Some other probed endpoint resolved into the VPC: interface endpoints are in use here.
    bool others_resolve_private(const endpoint_observation& self) const {
        for (const auto& ep : seen_.endpoints) {
            if (&ep == &self || ep.via_proxy) {
                continue;
            }
            if (std::any_of(ep.addresses.begin(), ep.addresses.end(), internal_address)) {
                return true;
            }
        }
        return false;
    }

    // Not for s3: its usual gateway endpoint routes to public addresses without any DNS change.
    bool private_dns_missing(const endpoint_observation& ep) const {
        return ep.target.svc != service::s3 && public_only(ep) && others_resolve_private(ep);
    }

    void add(std::string id, severity level, std::optional<service> svc, std::string message,
             std::string remedy) {
        out_.push_back(finding{std::move(id), level, svc, std::move(message), std::move(remedy)});
    }

    // --- region, IMDS, the agent's config -------------------------------------------------

    void check_region() {
        const auto& imds = seen_.imds;
        std::string imds_text;
        if (imds.failure) {
            imds_text = cat("IMDS ", failure_text(*imds.failure));
        } else if (!imds.reachable) {
            imds_text = "IMDS did not answer";
        } else if (!imds.region) {
            imds_text = "IMDS answered without a region";
        }
        if (!seen_.region) {
            add("region_unknown", severity::warning, std::nullopt,
                cat("The region is unknown (",
                    imds_text.empty() ? std::string("no source gave one") : imds_text,
                    ", and neither ssm-doctor.yaml nor the agent's config sets it): endpoint "
                    "host names cannot be built, so no endpoint was checked."),
                "Set `region` in /etc/ssm-doctor/ssm-doctor.yaml, or make IMDS reachable: "
                "instance metadata enabled (HttpEndpoint), a hop limit of 2 or more inside "
                "containers, and no firewall or proxy in the way of 169.254.169.254.");
            return;
        }
        if (imds_text.empty()) {
            return;
        }
        // An operator who wrote the region down may well be on a node without IMDS (hybrid).
        const bool operator_set =
            seen_.region_source == "option" || seen_.region_source == "config";
        add("imds_unreachable", operator_set ? severity::info : severity::warning, std::nullopt,
            cat(imds_text, "; the region ", *seen_.region, " comes from ", region_source_text(),
                ". On EC2 the agent itself needs IMDS for the instance's credentials."),
            "Check that instance metadata is enabled (HttpEndpoint), that its hop limit is 2 or "
            "more when the agent runs in a container, and that no firewall or proxy blocks "
            "169.254.169.254. On a hybrid (on-premises) node this is expected.");
    }

    void check_agent_config() {
        const auto& cfg = seen_.agent_config;
        if (!cfg.present || !cfg.error) {
            return;
        }
        add("agent_config_invalid", severity::warning, std::nullopt,
            cat("The agent's config ", agent_config_path(), " cannot be read: ", *cfg.error,
                ". ssm-doctor probed the default endpoints; the agent may not be using them."),
            cat("Fix ", agent_config_path(),
                " (valid JSON, string values for the Endpoint keys) or remove it, then run `",
                restart_command(), "`."));
    }

    // --- the agent itself -----------------------------------------------------------------

    void check_agent() {
        const auto& agent = seen_.agent;
        if (!agent.installed) {
            add("agent_not_installed", severity::critical, std::nullopt,
                "The SSM Agent is not installed: neither its binary nor a package was found, so "
                "Systems Manager cannot manage this instance.",
                "Install the amazon-ssm-agent package (dnf/yum or apt), or on Ubuntu `sudo snap "
                "install amazon-ssm-agent --classic`, then enable and start it.");
            return;
        }
        if (!supervisor_running()) {
            std::string how;
            switch (agent.method) {
                case install_method::snap:
                    how =
                        "Run `sudo snap start --enable amazon-ssm-agent` (unit "
                        "snap.amazon-ssm-agent.amazon-ssm-agent.service)";
                    break;
                case install_method::rpm:
                case install_method::deb:
                    how = "Run `sudo systemctl enable --now amazon-ssm-agent`";
                    break;
                case install_method::unknown:
                case install_method::other:
                    how =
                        "Run `sudo systemctl enable --now amazon-ssm-agent`, or for a snap "
                        "install `sudo snap start --enable amazon-ssm-agent` (unit "
                        "snap.amazon-ssm-agent.amazon-ssm-agent.service)";
                    break;
            }
            add("agent_not_running", severity::critical, std::nullopt,
                "The SSM Agent is installed but no amazon-ssm-agent process runs.",
                cat(how,
                    "; if it stops again, read `journalctl -u amazon-ssm-agent` and "
                    "/var/log/amazon/ssm/amazon-ssm-agent.log."));
        }
        const bool unsupported_region =
            seen_.region && ec2messages_unsupported_in(policy_, *seen_.region);
        if (!agent.version) {
            std::string why =
                agent.notes.empty() ? std::string() : cat(" (", join(agent.notes, "; "), ")");
            std::string message = cat("The agent's version could not be read", why,
                                      ", so ec2messages is assumed required.");
            if (unsupported_region) {
                message +=
                    cat(" In ", *seen_.region, " agents older than 3.3.40.0 cannot report at all.");
            }
            add("agent_version_unknown", severity::warning, service::ec2messages,
                std::move(message),
                "Check `amazon-ssm-agent -version` (run as root) or the package version "
                "(`rpm -q amazon-ssm-agent`, `dpkg-query -W amazon-ssm-agent`, `snap list "
                "amazon-ssm-agent`).");
            return;
        }
        if (!old_agent()) {
            return;
        }
        if (unsupported_region) {
            add("agent_too_old_for_region", severity::critical, std::nullopt,
                cat("Agent ", version_text(),
                    " is older than 3.3.40.0 and needs ec2messages, "
                    "which cannot be used in ",
                    *seen_.region, ": the agent cannot report status or command results here."),
                "Upgrade the agent to 3.3.40.0 or later (the package manager, or `sudo snap "
                "refresh amazon-ssm-agent`) and make sure ssmmessages is reachable.");
            return;
        }
        add("ec2messages_needed_by_old_agent", severity::info, service::ec2messages,
            cat("Agent ", version_text(),
                " is older than 3.3.40.0 and polls ec2messages all "
                "the time: in a private subnet it needs the VPC endpoint ",
                endpoint_service(service::ec2messages), "."),
            cat("Upgrading the agent to 3.3.40.0 or later moves it to ssmmessages; the endpoint ",
                endpoint_service(service::ec2messages),
                " can then be removed once no other instance needs it."));
    }

    void check_proxy() {
        if (!seen_.agent.proxy || seen_.agent.proxy->https_proxy.empty()) {
            return;
        }
        const auto& proxy = *seen_.agent.proxy;
        std::vector<std::string> through;
        for (const auto& ep : seen_.endpoints) {
            if (ep.via_proxy) {
                through.emplace_back(to_string(ep.target.svc));
            }
        }
        std::string message = cat("The agent (pid ", std::to_string(proxy.from_pid),
                                  ") uses the proxy ", redacted_proxy());
        if (!proxy.no_proxy.empty()) {
            message += cat(" with NO_PROXY=", proxy.no_proxy);
        }
        message += through.empty()
                       ? std::string("; no probed endpoint goes through it.")
                       : cat("; ", join(through, ", "),
                             " go through it, so which endpoint an agent connection serves "
                             "cannot be told from the socket table; the agent holds ",
                             connections(seen_.proxy_sessions.size()), " to the proxy.");
        add("agent_uses_proxy", severity::info, std::nullopt, std::move(message), "");
        // IMDS through a proxy fails: the proxy cannot reach the instance's link-local service.
        if (!proxy_excluded("169.254.169.254", proxy.no_proxy)) {
            add("proxy_without_imds_exclusion", severity::warning, std::nullopt,
                "The agent's NO_PROXY does not exclude 169.254.169.254, so its requests to "
                "instance metadata (credentials, region) go to the proxy.",
                "Add 169.254.169.254 to NO_PROXY (and no_proxy) in the agent's environment, "
                "usually /etc/systemd/system/amazon-ssm-agent.service.d/override.conf, then "
                "`sudo systemctl daemon-reload` and restart the agent.");
        }
    }

    void check_attribution() {
        if (!supervisor_running() || attribution_complete()) {
            return;
        }
        const auto& sockets = seen_.sockets;
        std::string why =
            !sockets.table_read
                ? std::string("the socket table (/proc/net/tcp, tcp6) could not be read")
                : std::string("some processes' open files could not be read");
        if (!sockets.notes.empty()) {
            why += cat(": ", join(sockets.notes, "; "));
        }
        add("sessions_unattributed", severity::warning, std::nullopt,
            cat("The agent's connections could not all be attributed (", why,
                "), so ssm-doctor draws no conclusion from a missing connection."),
            "Run ssm-doctor as root, or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (as its "
            "systemd unit does), so it can read /proc/<pid>/fd of the agent's processes.");
    }

    // --- one endpoint ---------------------------------------------------------------------

    void check_endpoint(const endpoint_observation& ep, requirement req) {
        const service svc = ep.target.svc;
        const std::string name{to_string(svc)};
        if (req == requirement::unsupported) {
            add("ec2messages_unsupported_region", severity::info, svc,
                cat("In ", region_text(),
                    " the agent cannot use ec2messages; it needs ssmmessages instead",
                    ep.probed && ep.reachable()
                        ? cat(". The reachable endpoint ", ep.target.host, " is of no use here.")
                        : std::string(".")),
                "");
        }
        if (ep.target.overridden && ep.target.host.empty()) {
            check_unusable_override(ep, req);
            return;
        }
        if (ep.target.overridden) {
            add("endpoint_overridden", severity::info, svc,
                cat(name, ": the agent's config sets ", ep.target.override_key,
                    ", so ssm-doctor probed ", ep.target.host,
                    ep.target.default_host.empty() ? std::string()
                    : ep.target.default_host == ep.target.host
                        ? std::string(", the same as the default host")
                        : cat(" instead of ", ep.target.default_host),
                    "."),
                "");
        }
        if (ep.target.plain_http) {
            add("endpoint_override_plain_http", severity::warning, svc,
                cat(name, ": ", ep.target.override_key, " is \"", ep.target.override_value,
                    "\", an http:// URL, so the agent would talk to ", ep.target.host,
                    " without TLS."),
                cat("Write the endpoint as https://", ep.target.host, " (or the bare host) in ",
                    agent_config_path(), " and restart the agent."));
        }
        if (!ep.probed) {
            if (seen_.region) {
                add("endpoint_not_probed", severity::warning, svc,
                    cat(name, " was not checked: no host name could be built for it (region \"",
                        *seen_.region, "\")."),
                    "Check the region in ssm-doctor.yaml and the Endpoint keys of the agent's "
                    "config.");
            }
            return;
        }
        if (ep.reachable()) {
            check_partial(ep);
            check_private_dns(ep, req);
            check_outside_vpc(ep);
            check_certificate(ep);
            return;
        }
        check_unreachable(ep, req);
    }

    // The override names no usable host: the agent fails on that key exactly as ssm-doctor did.
    void check_unusable_override(const endpoint_observation& ep, requirement req) {
        const service svc = ep.target.svc;
        const severity level = req == requirement::required   ? severity::critical
                               : req == requirement::optional ? severity::warning
                                                              : severity::info;
        add("endpoint_override_invalid", level, svc,
            cat("The agent's config sets ", ep.target.override_key, " to \"",
                ep.target.override_value,
                "\", from which no host name can be taken: the agent cannot reach ", to_string(svc),
                " either."),
            cat("Fix or remove ", ep.target.override_key, " in ", agent_config_path(),
                " (a host name or an https:// URL), then run `", restart_command(), "`."));
    }

    // The failed addresses, each with its phase, reason and detail.
    std::string address_failures(const endpoint_observation& ep) const {
        std::vector<std::string> parts;
        for (const auto& a : ep.addresses) {
            if (a.probe.ok) {
                continue;
            }
            parts.push_back(a.probe.failure
                                ? cat(a.ip.to_string(), " ", failure_text(*a.probe.failure))
                                : cat(a.ip.to_string(), " failed without a recorded reason"));
        }
        return join(parts, "; ");
    }

    void check_unreachable(const endpoint_observation& ep, requirement req) {
        const service svc = ep.target.svc;
        const std::string name{to_string(svc)};
        const probe_failure* failure = nullptr;
        const address_observation* failed_address = nullptr;
        std::string what;
        if (ep.dns.failure) {
            failure = &*ep.dns.failure;
            what = cat(ep.via_proxy ? "resolving the proxy " : "resolving ",
                       ep.dns.host.empty() ? ep.target.host : ep.dns.host, ": ",
                       failure_text(*failure));
        } else if (ep.addresses.empty()) {
            what = "no address was probed";
        } else {
            for (const auto& a : ep.addresses) {
                if (a.probe.failure) {
                    failure = &*a.probe.failure;
                    failed_address = &a;
                    break;
                }
            }
            what = cat(ep.addresses.size() == 1 ? std::string("its address failed: ")
                                                : cat("all ", std::to_string(ep.addresses.size()),
                                                      " addresses failed: "),
                       address_failures(ep));
        }
        const bool dns_missing = private_dns_missing(ep);
        std::string message =
            cat(name, " (", ep.target.host, ")", ep.via_proxy ? " through the proxy" : "",
                " is not reachable: ", what, ".");
        if (dns_missing) {
            message +=
                " It resolves only to public addresses while other endpoints resolve "
                "to private ones.";
        }
        if (!ep.sessions.empty()) {
            message += cat(" Yet the agent holds ", connections(ep.sessions.size()),
                           " to it: its path differs from ssm-doctor's (trust "
                           "store, proxy or DNS).");
        }
        std::string remedy = failure ? remedy_for(ep, *failure, failed_address)
                                     : std::string(
                                           "Rerun with debug logging to see the probe's "
                                           "steps.");
        if (dns_missing) {
            remedy = cat("Private DNS is missing: create the interface VPC endpoint ",
                         endpoint_service(svc),
                         " with private DNS enabled (or enable private DNS on it) so the name "
                         "resolves inside the VPC. ",
                         remedy);
        }
        switch (req) {
            case requirement::required: {
                std::string why;
                if (svc == service::ec2messages) {
                    why = seen_.agent.version
                              ? cat(" Agent ", version_text(),
                                    " is older than 3.3.40.0 and needs it.")
                              : std::string(
                                    " The agent's version is unknown, so it is assumed "
                                    "to need it.");
                } else {
                    why = cat(" The agent needs it for ", service_role(svc), ".");
                }
                add("required_endpoint_unreachable", severity::critical, svc, message + why,
                    std::move(remedy));
                break;
            }
            case requirement::optional:
                add("optional_endpoint_unreachable", severity::warning, svc,
                    cat(message, " It is needed only for ", service_role(svc), "."),
                    std::move(remedy));
                break;
            case requirement::not_required:
                add("ec2messages_unreachable_not_needed", severity::info, svc,
                    cat(message, " Agent ", version_text(),
                        " (3.3.40.0 or later) uses ssmmessages instead, so this does no harm."),
                    "");
                break;
            case requirement::unsupported:
                break;  // ec2messages_unsupported_region says all there is to say
        }
    }

    std::string remedy_for(const endpoint_observation& ep, const probe_failure& f,
                           const address_observation* address) const {
        const service svc = ep.target.svc;
        const std::string proxy = redacted_proxy();
        const std::string target = cat(ep.target.host, ":", std::to_string(ep.target.port));
        switch (f.reason) {
            case failure_reason::nxdomain:
            case failure_reason::no_address:
                if (ep.via_proxy) {
                    return cat("The proxy's host name ", ep.dns.host,
                               " does not resolve: fix HTTPS_PROXY in the agent's environment "
                               "(its systemd drop-in) or the DNS record of the proxy.");
                }
                if (ep.target.overridden) {
                    return cat("The agent's config sets ", ep.target.override_key, " to ",
                               ep.target.host, ", which does not resolve: fix the override in ",
                               agent_config_path(), ", or create the interface VPC endpoint ",
                               endpoint_service(svc), " with private DNS enabled.");
                }
                return cat("Create the interface VPC endpoint ", endpoint_service(svc),
                           " in this instance's VPC with private DNS enabled (or enable private "
                           "DNS on the existing one), or give the subnet a route to the "
                           "internet through a NAT gateway.");
            case failure_reason::servfail:
            case failure_reason::dns_timeout:
            case failure_reason::dns_error:
                return "Fix DNS: /etc/resolv.conf should name the VPC resolver (the VPC CIDR's "
                       "base address + 2, or 169.254.169.253) or a server that forwards to it; "
                       "the VPC needs enableDnsSupport and enableDnsHostnames turned on (private "
                       "DNS of interface endpoints needs both); check Route 53 Resolver rules "
                       "for amazonaws.com.";
            case failure_reason::timeout:
                if (f.phase == probe_phase::connect) {
                    if (ep.via_proxy) {
                        return cat("The proxy ", proxy,
                                   " does not accept connections: check that it runs and that "
                                   "security groups and network ACLs let this instance reach "
                                   "it.");
                    }
                    std::string out =
                        cat("The security group of the VPC endpoint ", endpoint_service(svc),
                            " must allow inbound TCP 443 from this instance (its address or its "
                            "security group); check the network ACLs of this subnet and of the "
                            "endpoint's subnets (return traffic to ephemeral ports too) and the "
                            "route table.");
                    if (address && address->kind == address_kind::public_address &&
                        !internal_address(*address)) {
                        out +=
                            " The address is public: without the VPC endpoint, this subnet "
                            "needs a route through a NAT gateway.";
                    }
                    return out;
                }
                if (f.phase == probe_phase::proxy) {
                    return cat("The proxy ", proxy,
                               " accepted the connection but did not "
                               "answer CONNECT ",
                               target, " in time: check its access to that host.");
                }
                return "TCP connected but the TLS handshake stalled: a firewall or inspecting "
                       "appliance holds the traffic, or large packets are dropped on the path "
                       "(check the MTU and that ICMP \"fragmentation needed\" is not blocked).";
            case failure_reason::unreachable:
                return cat("No route to ", address ? address->ip.to_string() : ep.target.host,
                           ": check the subnet's route table (for an IPv6 address, that the "
                           "subnet has IPv6 and a route for it); for a public address the "
                           "subnet needs a NAT gateway or the VPC endpoint ",
                           endpoint_service(svc), " with private DNS.");
            case failure_reason::refused:
            case failure_reason::reset:
                if (ep.via_proxy) {
                    return cat("The proxy ", proxy, " rejected the connection (",
                               to_string(f.reason), "): check that it listens on that port.");
                }
                return "Something on the path rejects port 443: a host firewall on this "
                       "instance (iptables/nftables), a network firewall, or a transparent "
                       "proxy. A VPC endpoint itself never refuses 443.";
            case failure_reason::proxy_refused:
                return cat("The proxy ", proxy, " refuses CONNECT ", target,
                           f.detail.empty() ? std::string() : cat(" (", f.detail, ")"),
                           ": allow that host in the proxy's rules, or, when the VPC endpoint ",
                           endpoint_service(svc),
                           " exists, add the host to NO_PROXY in the "
                           "agent's environment.");
            case failure_reason::tls_verify_failed:
                return verify_remedy(ep, f, address);
            case failure_reason::tls_handshake_failed:
                return "The TLS handshake failed: AWS endpoints need TLS 1.2 or later with "
                       "current ciphers; look for a middlebox speaking something else on port "
                       "443 or a system crypto policy that is too old or too strict.";
            case failure_reason::http_error:
                return cat("The proxy ", proxy,
                           " answered CONNECT with malformed HTTP: check "
                           "that HTTPS_PROXY names an HTTP proxy (http:// scheme) and the right "
                           "port.");
            case failure_reason::other:
                break;
        }
        return "Read the detail above; rerun with debug logging to see the probe's steps.";
    }

    std::string verify_remedy(const endpoint_observation& ep, const probe_failure& f,
                              const address_observation* address) const {
        const tls_details* tls = address && address->probe.tls ? &*address->probe.tls : nullptr;
        if (tls && tls->not_after && *tls->not_after <= now_) {
            return cat("The certificate presented", tls->issuer.empty() ? "" : " by ", tls->issuer,
                       " expired on ", format_utc(*tls->not_after),
                       ". AWS endpoints do not present expired certificates: check this "
                       "instance's clock (chrony/NTP), or the device that presents it.");
        }
        std::string out = "The certificate does not verify";
        if (tls && !tls->issuer.empty()) {
            out += cat(" (issuer ", tls->issuer, ")");
        } else if (!f.detail.empty()) {
            out += cat(" (", f.detail, ")");
        }
        out +=
            ": an intercepting proxy or the wrong endpoint answered. If a TLS-inspecting "
            "proxy is intended, trust its CA (tls.ca_file for ssm-doctor, the system trust "
            "store for the agent);";
        if (ep.target.overridden) {
            out += cat(" otherwise fix ", ep.target.override_key, " in ", agent_config_path(),
                       " so the host name matches the certificate.");
        } else {
            out += cat(" otherwise check what ", ep.target.host,
                       " resolves to (a private hosted zone for amazonaws.com?).");
        }
        return out;
    }

    void check_partial(const endpoint_observation& ep) {
        std::size_t working = 0;
        for (const auto& a : ep.addresses) {
            working += a.probe.ok ? 1 : 0;
        }
        if (working == ep.addresses.size()) {
            return;
        }
        add("endpoint_partially_reachable", severity::warning, ep.target.svc,
            cat(std::to_string(working), " of ", std::to_string(ep.addresses.size()),
                " addresses of ", ep.target.host, " work; ", address_failures(ep),
                ". The agent may pick a failing one."),
            cat("An interface endpoint has one address per subnet: check the security group, "
                "network ACL and route for the failing address's subnet of ",
                endpoint_service(ep.target.svc),
                "; an IPv6 address failing while IPv4 works means this subnet has no IPv6 "
                "route."));
    }

    void check_private_dns(const endpoint_observation& ep, requirement req) {
        if (req == requirement::not_required || req == requirement::unsupported ||
            !private_dns_missing(ep)) {
            return;
        }
        const service svc = ep.target.svc;
        std::vector<std::string> addresses;
        for (const auto& a : ep.addresses) {
            addresses.push_back(a.ip.to_string());
        }
        add("private_dns_missing", severity::warning, svc,
            cat(ep.target.host, " resolves only to public addresses (", join(addresses, ", "),
                ") while other endpoints resolve to private ones: the VPC endpoint ",
                endpoint_service(svc),
                " is missing or has private DNS disabled, so this "
                "traffic leaves the VPC over the internet path."),
            cat("Create the interface VPC endpoint ", endpoint_service(svc),
                " with private DNS enabled, or enable private DNS on the existing one."));
    }

    void check_outside_vpc(const endpoint_observation& ep) {
        if (ep.via_proxy) {
            return;
        }
        std::vector<std::string> outside;
        for (const auto& a : ep.addresses) {
            if ((a.kind == address_kind::private_v4 || a.kind == address_kind::ula) &&
                a.in_vpc == false) {
                outside.push_back(a.ip.to_string());
            }
        }
        if (outside.empty()) {
            return;
        }
        add("endpoint_outside_vpc", severity::info, ep.target.svc,
            cat(ep.target.host, " resolves to private addresses outside this VPC's CIDR blocks (",
                join(outside, ", "),
                "): a shared endpoint in a peered VPC or behind a transit gateway, reached "
                "through Route 53 Resolver rules or a private hosted zone."),
            "Nothing to do if that is the design; otherwise check the private hosted zones and "
            "resolver rules associated with this VPC.");
    }

    void check_certificate(const endpoint_observation& ep) {
        std::optional<time_point> earliest;
        for (const auto& a : ep.addresses) {
            if (a.probe.ok && a.probe.tls && a.probe.tls->not_after &&
                (!earliest || *a.probe.tls->not_after < *earliest)) {
                earliest = a.probe.tls->not_after;
            }
        }
        if (!earliest) {
            return;
        }
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(*earliest - now_);
        if (left >= std::chrono::days{policy_.certificate_warning_days}) {
            return;
        }
        add("certificate_expiring", severity::warning, ep.target.svc,
            cat("The certificate of ", ep.target.host, " expires on ", format_utc(*earliest),
                ", in ", format_duration(left), "."),
            ep.via_proxy ? std::string("The certificate comes from the proxy: renew the proxy's "
                                       "interception certificate.")
                         : std::string("AWS renews its endpoint certificates well ahead; a "
                                       "certificate this close to expiry suggests an "
                                       "intercepting device or a wrong clock on this instance."));
    }

    // --- what the agent's connections say -------------------------------------------------

    void check_hibernation() {
        if (!supervisor_running() || !unreachable(service::ssm) || any_agent_session()) {
            return;
        }
        const auto& log_time = seen_.agent.hibernate_log_written;
        if (!attribution_complete() && !log_time) {
            return;  // the agent's connections may just be unattributed
        }
        std::string message =
            "ssm is not reachable and the agent holds no connection to any "
            "endpoint: ";
        if (worker()) {
            message +=
                "the worker's first health ping to ssm failed, so it hibernates: it opens "
                "no ssmmessages or ec2messages connection and pings ssm again after 5 "
                "minutes, then after 10, 20, 40 and every 60 minutes.";
        } else {
            message +=
                "only amazon-ssm-agent runs; it cannot get going without ssm and retries "
                "about every 5 minutes before it starts ssm-agent-worker.";
        }
        if (log_time) {
            message += cat(
                " hibernate.log was last written ", format_utc(*log_time), " (",
                format_duration(std::chrono::duration_cast<std::chrono::seconds>(now_ - *log_time)),
                " ago).");
        }
        add("agent_hibernating", severity::critical, service::ssm, std::move(message),
            cat("Make ssm reachable first (see required_endpoint_unreachable for ssm); then run `",
                restart_command(), "` rather than wait up to an hour for the next attempt."));
    }

    void check_worker() {
        if (!supervisor_running() || worker() || !reachable(service::ssm)) {
            return;
        }
        add("agent_worker_not_running", severity::warning, std::nullopt,
            "amazon-ssm-agent runs but ssm-agent-worker does not, although ssm is reachable: "
            "the supervisor starts the worker only once it has credentials.",
            "Look for `Retrieve credentials produced error` in "
            "/var/log/amazon/ssm/amazon-ssm-agent.log; check that the instance profile's role "
            "allows Systems Manager (AmazonSSMManagedInstanceCore) or that Default Host "
            "Management is on, and that IMDS answers; then restart the agent.");
    }

    // A reachable messaging endpoint the agent should hold a connection to but does not.
    bool session_expected_but_missing(service svc) const {
        const auto* ep = endpoint(svc);
        return ep && ep->probed && ep->reachable() && ep->sessions.empty() && absence_tells(*ep) &&
               supervisor_running() && worker() && !unreachable(service::ssm);
    }

    void check_control_channel() {
        if (need(service::ssmmessages) == requirement::required &&
            session_expected_but_missing(service::ssmmessages)) {
            add("control_channel_missing", severity::warning, service::ssmmessages,
                "ssmmessages is reachable but the agent holds no connection to it: its control "
                "channel is not up, so Session Manager cannot reach this instance.",
                "Check that the instance role allows ssmmessages:CreateControlChannel, "
                "ssmmessages:OpenControlChannel, ssmmessages:CreateDataChannel and "
                "ssmmessages:OpenDataChannel (AmazonSSMManagedInstanceCore has them), and read "
                "/var/log/amazon/ssm/amazon-ssm-agent.log for AccessDenied or websocket "
                "errors.");
        }
        // An old agent polls ec2messages all the time; its absence is a fault too.
        if (old_agent() && need(service::ec2messages) == requirement::required &&
            session_expected_but_missing(service::ec2messages)) {
            add("ec2messages_session_missing", severity::warning, service::ec2messages,
                cat("Agent ", version_text(),
                    " is older than 3.3.40.0 and should poll "
                    "ec2messages all the time, but holds no connection to it."),
                "Check that the instance role allows ec2messages:GetMessages and the other "
                "ec2messages actions (AmazonSSMManagedInstanceCore has them), and read "
                "/var/log/amazon/ssm/amazon-ssm-agent.log for errors.");
        }
    }

    void check_ec2messages_use() {
        const auto* ep = endpoint(service::ec2messages);
        if (!ep || !ep->probed || need(service::ec2messages) != requirement::not_required ||
            !supervisor_running()) {
            return;
        }
        const std::string service_name = endpoint_service(service::ec2messages);
        if (!ep->sessions.empty()) {
            const auto* w = worker();
            const std::string count = connections(ep->sessions.size());
            if (!w || !w->started) {
                add("ec2messages_startup_polling", severity::info, service::ec2messages,
                    cat("Agent ", version_text(), " holds ", count,
                        " to ec2messages; the worker's start time is unknown, so "
                        "this may be the polling every new agent does for about a minute "
                        "after it starts."),
                    cat("Run ssm-doctor again in a few minutes before deciding about ",
                        service_name, "."));
                return;
            }
            const auto age = std::chrono::duration_cast<std::chrono::seconds>(now_ - *w->started);
            if (age < policy_.ec2messages_grace) {
                add("ec2messages_startup_polling", severity::info, service::ec2messages,
                    cat("Agent ", version_text(), " holds ", count,
                        " to ec2messages, but its worker started only ", format_duration(age),
                        " ago: a new agent polls ec2messages for about a minute after it "
                        "starts, and a pooled connection may linger a little longer."),
                    cat("Normal start-up; run ssm-doctor again after ",
                        format_duration(std::chrono::duration_cast<std::chrono::seconds>(
                            policy_.ec2messages_grace - age)),
                        " before deciding about ", service_name, "."));
                return;
            }
            const bool channel_up = has_session(service::ssmmessages);
            add("ec2messages_still_polled", severity::warning, service::ec2messages,
                cat("Agent ", version_text(), " still holds ", count, " to ec2messages ",
                    format_duration(age),
                    " after its worker started; from 3.3.40.0 it stops polling about a minute "
                    "after the control channel is up",
                    channel_up ? std::string(".")
                               : std::string(", and it holds no ssmmessages connection: the "
                                             "control channel could not be created.")),
                channel_up
                    ? cat("Read /var/log/amazon/ssm/amazon-ssm-agent.log for `SSM Connection "
                          "channel status` and `MDS Polling job stopped.`; keep ",
                          service_name, " until the polling stops.")
                    : cat("The agent polls ec2messages again when CreateControlChannel is "
                          "denied: allow ssmmessages:CreateControlChannel and "
                          "ssmmessages:OpenControlChannel in the instance role and look for "
                          "AccessDenied in the agent's log; keep ",
                          service_name, " until then."));
            return;
        }
        // Removal advice needs certainty: every connection attributed, no proxy in between,
        // the control channel up, and an address inside the VPC (an endpoint exists at all).
        const bool endpoint_exists =
            std::any_of(ep->addresses.begin(), ep->addresses.end(), internal_address);
        if (!ep->reachable() || !absence_tells(*ep) || !has_session(service::ssmmessages) ||
            !endpoint_exists) {
            return;
        }
        add("ec2messages_endpoint_unused", severity::info, service::ec2messages,
            cat("Agent ", version_text(),
                " (3.3.40.0 or later) talks to ssmmessages and holds "
                "no connection to ec2messages, whose endpoint ",
                ep->target.host,
                " is reachable inside the VPC: this instance does not need the VPC endpoint ",
                service_name, "."),
            cat("The VPC endpoint ", service_name,
                " can be removed once every instance that "
                "uses it runs agent 3.3.40.0 or later (older agents need it)."));
    }

    const observations& seen_;
    const verdict_policy& policy_;
    time_point now_;
    std::vector<requirement> needs_;
    std::vector<finding> out_;
};

}  // namespace

std::string_view to_string(severity s) {
    switch (s) {
        case severity::info:
            return "info";
        case severity::warning:
            return "warning";
        case severity::critical:
            return "critical";
    }
    return "info";
}

std::string_view to_string(verdict v) {
    switch (v) {
        case verdict::ok:
            return "ok";
        case verdict::warning:
            return "warning";
        case verdict::critical:
            return "critical";
        case verdict::unknown:
            return "unknown";
    }
    return "unknown";
}

std::string_view to_string(requirement r) {
    switch (r) {
        case requirement::required:
            return "required";
        case requirement::not_required:
            return "not_required";
        case requirement::optional:
            return "optional";
        case requirement::unsupported:
            return "unsupported";
    }
    return "optional";
}

bool ec2messages_unsupported_in(const verdict_policy& policy, std::string_view region) {
    const std::string wanted = lower(region);
    return std::any_of(policy.ec2messages_unsupported_regions.begin(),
                       policy.ec2messages_unsupported_regions.end(),
                       [&](const std::string& r) { return lower(r) == wanted; });
}

requirement requirement_for(service svc, const std::optional<agent_version>& version,
                            const std::optional<std::string>& region,
                            const verdict_policy& policy) {
    switch (svc) {
        case service::ssm:
        case service::ssmmessages:
            return requirement::required;
        case service::ec2messages:
            if (region && ec2messages_unsupported_in(policy, *region)) {
                return requirement::unsupported;
            }
            // Unknown version: assume the old agent, which cannot work without ec2messages.
            if (version && *version >= ec2messages_optional_from) {
                return requirement::not_required;
            }
            return requirement::required;
        case service::s3:
        case service::kms:
        case service::logs:
        case service::monitoring:
            return requirement::optional;
    }
    return requirement::optional;
}

std::string vpc_endpoint_service(std::string_view region, service svc) {
    // The China partition prefixes its endpoint service names with "cn.".
    const bool china = region.substr(0, 3) == "cn-";
    return cat(china ? "cn.com.amazonaws." : "com.amazonaws.", region, ".", to_string(svc));
}

verdict overall_verdict(const std::vector<finding>& findings, bool region_known) {
    const auto any = [&](severity level) {
        return std::any_of(findings.begin(), findings.end(),
                           [&](const finding& f) { return f.level == level; });
    };
    if (any(severity::critical)) {
        return verdict::critical;
    }
    if (!region_known) {
        return verdict::unknown;
    }
    return any(severity::warning) ? verdict::warning : verdict::ok;
}

report judge(observations seen, const verdict_policy& policy,
             std::chrono::system_clock::time_point now) {
    report result;
    result.checked_at = now;
    result.seen = std::move(seen);
    judgement j(result.seen, policy, now);
    result.requirements = j.requirements();
    result.findings = j.run();
    std::stable_sort(result.findings.begin(), result.findings.end(),
                     [](const finding& a, const finding& b) { return a.level > b.level; });
    result.overall = overall_verdict(result.findings, result.seen.region.has_value());
    return result;
}

}  // namespace ssm_doctor
