// SPDX-License-Identifier: Apache-2.0
// The JSON rendering of a report: every observation that led to the verdict, typed as documented.
#include <ctime>

#include "agent/render.hpp"
#include "probes/proxy.hpp"

namespace ssm_doctor {
namespace {

using json = nlohmann::ordered_json;

json optional_ms(const std::optional<std::chrono::milliseconds>& ms) {
    return ms ? json(ms->count()) : json(nullptr);
}

json to_json(const probe_failure& f) {
    return {{"phase", to_string(f.phase)}, {"reason", to_string(f.reason)}, {"detail", f.detail}};
}

json to_json(const tls_details& t, std::chrono::system_clock::time_point now) {
    json out{{"version", t.version},
             {"cipher", t.cipher},
             {"subject", t.subject},
             {"issuer", t.issuer},
             {"subject_alt_names", t.subject_alt_names},
             {"not_after", nullptr},
             {"days_to_expiry", nullptr}};
    if (t.not_after) {
        out["not_after"] = format_utc(*t.not_after);
        out["days_to_expiry"] = std::chrono::floor<std::chrono::days>(*t.not_after - now).count();
    }
    return out;
}

json to_json(const tcp_session& s) {
    return {{"pid", s.pid},
            {"process", s.process},
            {"local", s.local.address().to_string() + ":" + std::to_string(s.local.port())},
            {"remote", s.remote.address().to_string() + ":" + std::to_string(s.remote.port())}};
}

json sessions_json(const std::vector<tcp_session>& sessions) {
    json out = json::array();
    for (const auto& s : sessions) {
        out.push_back(to_json(s));
    }
    return out;
}

json timings(const endpoint_observation& ep, const address_observation* a) {
    return {{"dns", optional_ms(ep.dns_ms)},
            {"connect", a ? optional_ms(a->probe.connect_ms) : json(nullptr)},
            {"proxy", a ? optional_ms(a->probe.proxy_ms) : json(nullptr)},
            {"tls", a ? optional_ms(a->probe.tls_ms) : json(nullptr)}};
}

// The address that speaks for the endpoint: the first that worked, else the first tried.
const address_observation* representative(const endpoint_observation& ep) {
    for (const auto& a : ep.addresses) {
        if (a.probe.ok) {
            return &a;
        }
    }
    return ep.addresses.empty() ? nullptr : &ep.addresses.front();
}

std::optional<probe_failure> endpoint_failure(const endpoint_observation& ep) {
    if (ep.reachable()) {
        return std::nullopt;
    }
    if (ep.dns.failure) {
        return ep.dns.failure;
    }
    if (const auto* a = representative(ep); a && a->probe.failure) {
        return a->probe.failure;
    }
    return std::nullopt;
}

json endpoint_json(const endpoint_observation& ep, requirement req,
                   std::chrono::system_clock::time_point now) {
    const auto* best = representative(ep);
    json addresses = json::array();
    for (const auto& a : ep.addresses) {
        json one{{"ip", a.ip.to_string()},
                 {"kind", to_string(a.kind)},
                 {"in_vpc", a.in_vpc ? json(*a.in_vpc) : json(nullptr)},
                 {"reachable", a.probe.ok},
                 {"failure", a.probe.failure ? to_json(*a.probe.failure) : json(nullptr)},
                 {"timings_ms",
                  {{"connect", optional_ms(a.probe.connect_ms)},
                   {"proxy", optional_ms(a.probe.proxy_ms)},
                   {"tls", optional_ms(a.probe.tls_ms)}}}};
        addresses.push_back(std::move(one));
    }
    json trace = json::array();
    for (const auto& q : ep.dns.trace) {
        trace.push_back({{"server", q.server},
                         {"type", q.type},
                         {"outcome", q.outcome},
                         {"elapsed_ms", q.elapsed.count()}});
    }
    const auto failure = endpoint_failure(ep);
    return {{"service", to_string(ep.target.svc)},
            {"host", ep.target.host},
            {"port", ep.target.port},
            {"default_host", ep.target.default_host},
            {"overridden", ep.target.overridden},
            {"override_key", ep.target.overridden ? json(ep.target.override_key) : json(nullptr)},
            {"required", to_string(req)},
            {"probed", ep.probed},
            {"via_proxy", ep.via_proxy},
            {"reachable", ep.reachable()},
            {"addresses", std::move(addresses)},
            {"failure", failure ? to_json(*failure) : json(nullptr)},
            {"tls", best && best->probe.tls ? to_json(*best->probe.tls, now) : json(nullptr)},
            {"timings_ms", timings(ep, best)},
            {"dns", {{"source", ep.dns.source}, {"trace", std::move(trace)}}},
            {"sessions", sessions_json(ep.sessions)}};
}

json agent_json(const observations& seen) {
    const auto& agent = seen.agent;
    json processes = json::array();
    bool running = false;
    for (const auto& p : agent.processes) {
        running = running || p.name == "amazon-ssm-agent";
        processes.push_back(
            {{"pid", p.pid},
             {"name", p.name},
             {"started", p.started ? json(format_utc(*p.started)) : json(nullptr)}});
    }
    json proxy = nullptr;
    if (agent.proxy) {
        proxy = {{"https_proxy", redact_proxy_url(agent.proxy->https_proxy)},
                 {"no_proxy", agent.proxy->no_proxy},
                 {"sessions", sessions_json(seen.proxy_sessions)}};
    }
    const auto& cfg = seen.agent_config;
    return {{"installed", agent.installed},
            {"version", agent.version ? json(agent.version->to_string()) : json(nullptr)},
            {"version_source",
             agent.version_source.empty() ? json(nullptr) : json(agent.version_source)},
            {"install_method", to_string(agent.method)},
            {"running", running},
            {"processes", std::move(processes)},
            {"proxy", std::move(proxy)},
            {"config",
             {{"path", cfg.path.string()},
              {"present", cfg.present},
              {"error", cfg.error ? json(*cfg.error) : json(nullptr)}}},
            {"hibernate_log_written", agent.hibernate_log_written
                                          ? json(format_utc(*agent.hibernate_log_written))
                                          : json(nullptr)},
            {"notes", agent.notes}};
}

json imds_json(const imds_observation& imds) {
    json blocks = json::array();
    for (const auto& b : imds.vpc_cidrs) {
        blocks.push_back(b.to_string());
    }
    return {{"reachable", imds.reachable},
            {"imdsv2", imds.token_accepted},
            {"vpc_cidrs", std::move(blocks)},
            {"failure", imds.failure ? to_json(*imds.failure) : json(nullptr)},
            {"notes", imds.notes},
            {"elapsed_ms", imds.elapsed.count()}};
}

}  // namespace

std::string format_utc(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

nlohmann::ordered_json report_to_json(const report& r) {
    const auto& seen = r.seen;
    json endpoints = json::array();
    for (std::size_t i = 0; i < seen.endpoints.size(); ++i) {
        const auto req = i < r.requirements.size() ? r.requirements[i] : requirement::optional;
        endpoints.push_back(endpoint_json(seen.endpoints[i], req, r.checked_at));
    }
    json findings = json::array();
    for (const auto& f : r.findings) {
        findings.push_back({{"id", f.id},
                            {"severity", to_string(f.level)},
                            {"service", f.svc ? json(to_string(*f.svc)) : json(nullptr)},
                            {"message", f.message},
                            {"remedy", f.remedy}});
    }
    return {
        {"schema_version", json_schema_version},
        {"tool", {{"name", "ssm-doctor"}, {"version", SSM_DOCTOR_VERSION}}},
        {"checked_at", format_utc(r.checked_at)},
        {"elapsed_ms", seen.elapsed.count()},
        {"verdict", to_string(r.overall)},
        {"region", seen.region ? json(*seen.region) : json(nullptr)},
        {"region_source", seen.region_source.empty() ? json(nullptr) : json(seen.region_source)},
        {"instance_id", seen.imds.instance_id ? json(*seen.imds.instance_id) : json(nullptr)},
        {"agent", agent_json(seen)},
        {"imds", imds_json(seen.imds)},
        {"sockets",
         {{"read", seen.sockets.table_read},
          {"attribution_complete", seen.sockets.attribution_complete},
          {"notes", seen.sockets.notes}}},
        {"endpoints", std::move(endpoints)},
        {"findings", std::move(findings)},
        {"notes", seen.notes}};
}

}  // namespace ssm_doctor
