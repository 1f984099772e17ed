// SPDX-License-Identifier: Apache-2.0
// Tests of the verdict: hand-made observations in, findings, requirements and the overall out.
#include <utility>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/verdict.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

// A fixed "now": the verdict reads no clock, so the tests never need one either.
const system_clock::time_point now = std::chrono::sys_days{std::chrono::year{2026} / 12 / 3} + 12h;

const std::string region = "eu-west-1";

agent_version version(unsigned a, unsigned b, unsigned c, unsigned d) {
    return agent_version{{a, b, c, d}};
}
const agent_version new_agent = version(3, 3, 1142, 0);
const agent_version old_agent = version(3, 1, 1927, 0);

std::string host_of(service svc) {
    return std::string(to_string(svc)) + "." + region + ".amazonaws.com";
}

tls_probe_result tls_ok() {
    tls_probe_result r;
    r.ok = true;
    r.tls = tls_details{};
    r.tls->version = "TLSv1.3";
    r.tls->issuer = "CN=Amazon RSA 2048 M02,O=Amazon,C=US";
    r.tls->not_after = now + std::chrono::days{200};
    r.connect_ms = 2ms;
    r.tls_ms = 5ms;
    return r;
}

tls_probe_result tls_failed(probe_phase phase, failure_reason reason, std::string detail = "") {
    tls_probe_result r;
    r.failure = probe_failure{phase, reason, std::move(detail)};
    return r;
}

address_observation address(const std::string& ip, tls_probe_result probe = tls_ok()) {
    address_observation a;
    a.ip = boost::asio::ip::make_address(ip);
    a.kind = classify(a.ip);
    if (a.ip.is_v4()) {
        a.in_vpc = parse_cidr("10.0.0.0/16")->contains(a.ip);
    }
    a.probe = std::move(probe);
    return a;
}

endpoint_target target_of(service svc) {
    endpoint_target t;
    t.svc = svc;
    t.host = host_of(svc);
    t.default_host = t.host;
    return t;
}

// An endpoint that resolved to `ips`, each answering with a valid certificate.
endpoint_observation reachable(service svc, std::vector<std::string> ips) {
    endpoint_observation ep;
    ep.target = target_of(svc);
    ep.probed = true;
    ep.dns.host = ep.target.host;
    ep.dns.source = "dns";
    for (const auto& ip : ips) {
        ep.dns.addresses.push_back(boost::asio::ip::make_address(ip));
        ep.addresses.push_back(address(ip));
    }
    return ep;
}

// An endpoint whose name did not resolve.
endpoint_observation dns_failed(service svc, failure_reason reason) {
    endpoint_observation ep;
    ep.target = target_of(svc);
    ep.probed = true;
    ep.dns.host = ep.target.host;
    ep.dns.source = "dns";
    ep.dns.failure = probe_failure{probe_phase::dns, reason, "answer from 10.0.0.2:53"};
    return ep;
}

// An endpoint that resolved but none of whose addresses answered.
endpoint_observation failing(service svc, std::vector<std::string> ips, probe_phase phase,
                             failure_reason reason, std::string detail = "") {
    auto ep = reachable(svc, ips);
    for (auto& a : ep.addresses) {
        a.probe = tls_failed(phase, reason, detail);
    }
    return ep;
}

tcp_session session_to(const endpoint_observation& ep, std::string process = "ssm-agent-worker",
                       int pid = 101) {
    tcp_session s;
    s.local = tcp_endpoint(boost::asio::ip::make_address("10.0.3.4"), 40000);
    s.remote = tcp_endpoint(ep.addresses.front().ip, 443);
    s.inode = 9000 + static_cast<std::uint64_t>(pid);
    s.pid = pid;
    s.process = std::move(process);
    return s;
}

endpoint_observation with_session(endpoint_observation ep) {
    ep.sessions.push_back(session_to(ep));
    return ep;
}

agent_process process(int pid, std::string name, system_clock::time_point started) {
    agent_process p;
    p.pid = pid;
    p.name = name;
    p.exe = "/usr/bin/" + name;
    p.started = started;
    return p;
}

proxy_settings proxy(std::string url, std::string no_proxy) {
    proxy_settings p;
    p.https_proxy = std::move(url);
    p.no_proxy = std::move(no_proxy);
    p.from_pid = 100;
    return p;
}

// A healthy instance in eu-west-1 whose agent has run for three hours; endpoints are added by
// each scenario.
observations instance(std::optional<agent_version> v) {
    observations o;
    o.region = region;
    o.region_source = "imds";
    o.imds.reachable = true;
    o.imds.token_accepted = true;
    o.imds.region = region;
    o.imds.vpc_cidrs.push_back(*parse_cidr("10.0.0.0/16"));
    o.agent.installed = true;
    o.agent.version = v;
    o.agent.version_source = v ? "binary" : "";
    o.agent.method = install_method::rpm;
    o.agent.processes.push_back(process(100, "amazon-ssm-agent", now - 3h));
    o.agent.processes.push_back(process(101, "ssm-agent-worker", now - 3h));
    o.sockets.table_read = true;
    o.sockets.attribution_complete = true;
    return o;
}

// ssm reachable, ssmmessages reachable with the control channel, ec2messages as given.
observations standard(std::optional<agent_version> v, endpoint_observation ec2messages) {
    auto o = instance(v);
    o.endpoints.push_back(reachable(service::ssm, {"10.0.1.10"}));
    o.endpoints.push_back(with_session(reachable(service::ssmmessages, {"10.0.1.20"})));
    o.endpoints.push_back(std::move(ec2messages));
    return o;
}

endpoint_observation& endpoint_of(observations& o, service svc) {
    for (auto& ep : o.endpoints) {
        if (ep.target.svc == svc) {
            return ep;
        }
    }
    FAIL("no endpoint for " << to_string(svc));
    throw;  // unreachable: FAIL throws
}

report run(observations o, const verdict_policy& policy = {}) {
    return judge(std::move(o), policy, now);
}

const finding* find(const report& r, std::string_view id) {
    for (const auto& f : r.findings) {
        if (f.id == id) {
            return &f;
        }
    }
    return nullptr;
}

// A pointer into a temporary report would dangle: keep the report in a variable.
const finding* find(const report&& r, std::string_view id) = delete;

bool has(const report& r, std::string_view id) {
    return find(r, id) != nullptr;
}

std::size_t count(const report& r, std::string_view id) {
    return static_cast<std::size_t>(std::count_if(r.findings.begin(), r.findings.end(),
                                                  [&](const finding& f) { return f.id == id; }));
}

bool any_at(const report& r, severity level) {
    return std::any_of(r.findings.begin(), r.findings.end(),
                       [&](const finding& f) { return f.level == level; });
}

requirement need(const report& r, service svc) {
    for (std::size_t i = 0; i < r.seen.endpoints.size(); ++i) {
        if (r.seen.endpoints[i].target.svc == svc) {
            return r.requirements.at(i);
        }
    }
    FAIL("no endpoint for " << to_string(svc));
    throw;
}

// For failure messages: which findings a report holds.
std::string ids(const report& r) {
    std::string out;
    for (const auto& f : r.findings) {
        out += std::string(to_string(f.level)) + ":" + f.id + " ";
    }
    return out;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("the four steps of the classmethod experiment give the documented verdicts",
          "[verdict]") {
    SECTION("1: agent 3.3.380.0 with only ssm and ssmmessages endpoints is ok") {
        const auto r = run(standard(version(3, 3, 380, 0),
                                    dns_failed(service::ec2messages, failure_reason::nxdomain)));
        INFO(ids(r));
        CHECK(r.overall == verdict::ok);
        CHECK(need(r, service::ssm) == requirement::required);
        CHECK(need(r, service::ssmmessages) == requirement::required);
        CHECK(need(r, service::ec2messages) == requirement::not_required);
        CHECK_FALSE(any_at(r, severity::critical));
        CHECK_FALSE(any_at(r, severity::warning));
        REQUIRE(has(r, "ec2messages_unreachable_not_needed"));
        CHECK(find(r, "ec2messages_unreachable_not_needed")->level == severity::info);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
    }
    SECTION("2: agent 3.1.1927.0 without the ec2messages endpoint is critical") {
        const auto r =
            run(standard(old_agent, dns_failed(service::ec2messages, failure_reason::nxdomain)));
        INFO(ids(r));
        CHECK(r.overall == verdict::critical);
        CHECK(need(r, service::ec2messages) == requirement::required);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(f->svc == service::ec2messages);
        CHECK(contains(f->message, "dns failed (nxdomain)"));
        CHECK(contains(f->message, "3.1.1927.0"));
        CHECK(contains(f->remedy, "com.amazonaws.eu-west-1.ec2messages"));
        CHECK(contains(f->remedy, "private DNS"));
        CHECK(r.findings.front().id == "required_endpoint_unreachable");
    }
    SECTION("3: the old agent with all three endpoints and both sessions is ok") {
        const auto r =
            run(standard(old_agent, with_session(reachable(service::ec2messages, {"10.0.1.30"}))));
        INFO(ids(r));
        CHECK(r.overall == verdict::ok);
        CHECK(need(r, service::ec2messages) == requirement::required);
        CHECK_FALSE(any_at(r, severity::warning));
        CHECK(has(r, "ec2messages_needed_by_old_agent"));
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK_FALSE(has(r, "ec2messages_session_missing"));
    }
    SECTION("4: the upgraded agent leaves the ec2messages endpoint unused") {
        const auto r = run(standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"})));
        INFO(ids(r));
        CHECK(r.overall == verdict::ok);
        CHECK(need(r, service::ec2messages) == requirement::not_required);
        const auto* f = find(r, "ec2messages_endpoint_unused");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "3.3.1142.0"));
        CHECK(contains(f->remedy, "com.amazonaws.eu-west-1.ec2messages"));
        CHECK(contains(f->remedy, "removed"));
    }
}

TEST_CASE("an ec2messages session of a new agent is judged by the worker's age", "[verdict]") {
    auto o = standard(new_agent, with_session(reachable(service::ec2messages, {"10.0.1.30"})));

    SECTION("a worker started 30 s ago is still in its start-up polling") {
        o.agent.processes[1].started = now - 30s;
        const auto r = run(o);
        INFO(ids(r));
        CHECK(r.overall == verdict::ok);
        const auto* f = find(r, "ec2messages_startup_polling");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "30 s"));
        CHECK(contains(f->remedy, "90 s"));
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK_FALSE(has(r, "ec2messages_still_polled"));
    }
    SECTION("the grace period comes from the policy") {
        o.agent.processes[1].started = now - 150s;
        verdict_policy policy;
        policy.ec2messages_grace = 300s;
        CHECK(has(run(o, policy), "ec2messages_startup_polling"));
        CHECK(has(run(o), "ec2messages_still_polled"));
    }
    SECTION("an unknown start time gives no conclusion either way") {
        o.agent.processes[1].started.reset();
        const auto r = run(o);
        CHECK(has(r, "ec2messages_startup_polling"));
        CHECK_FALSE(has(r, "ec2messages_still_polled"));
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
    }
    SECTION("polling long after start with the control channel up is a warning") {
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "ec2messages_still_polled");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "3 h after"));
        CHECK(contains(f->remedy, "MDS Polling job stopped."));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("polling long after start without a control channel points at IAM") {
        endpoint_of(o, service::ssmmessages).sessions.clear();
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "ec2messages_still_polled");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "ssmmessages:CreateControlChannel"));
        CHECK(contains(f->remedy, "AccessDenied"));
        CHECK(has(r, "control_channel_missing"));
    }
}

TEST_CASE("the ec2messages endpoint is called removable only when that is certain", "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
    REQUIRE(has(run(o), "ec2messages_endpoint_unused"));

    SECTION("not when connections could not be attributed") {
        o.sockets.attribution_complete = false;
        o.sockets.notes.push_back("cannot read /proc/412/fd: Permission denied");
        const auto r = run(o);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        const auto* f = find(r, "sessions_unattributed");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "/proc/412/fd"));
        CHECK(contains(f->remedy, "root"));
    }
    SECTION("not when the socket table could not be read") {
        o.sockets.table_read = false;
        const auto r = run(o);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        REQUIRE(has(r, "sessions_unattributed"));
        CHECK(contains(find(r, "sessions_unattributed")->message, "/proc/net/tcp"));
    }
    SECTION("not when the agent reaches ec2messages through a proxy") {
        endpoint_of(o, service::ec2messages).via_proxy = true;
        CHECK_FALSE(has(run(o), "ec2messages_endpoint_unused"));
    }
    SECTION("not when the name resolves to the public endpoint: there is nothing to remove") {
        endpoint_of(o, service::ec2messages) = reachable(service::ec2messages, {"52.95.120.10"});
        CHECK_FALSE(has(run(o), "ec2messages_endpoint_unused"));
    }
    SECTION("not when the control channel is missing") {
        endpoint_of(o, service::ssmmessages).sessions.clear();
        const auto r = run(o);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK(has(r, "control_channel_missing"));
    }
    SECTION("not for an old agent") {
        o.agent.version = old_agent;
        const auto r = run(o);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK(has(r, "ec2messages_session_missing"));
    }
}

TEST_CASE("requirements follow the agent version and the region", "[verdict]") {
    verdict_policy policy;
    policy.ec2messages_unsupported_regions = {"ap-southeast-7", "mx-central-1"};
    const std::optional<std::string> eu = std::string("eu-west-1");
    const std::optional<std::string> mx = std::string("mx-central-1");

    SECTION("ssm and ssmmessages are always required, the rest optional") {
        for (auto svc : {service::ssm, service::ssmmessages}) {
            CHECK(requirement_for(svc, new_agent, eu, policy) == requirement::required);
            CHECK(requirement_for(svc, std::nullopt, std::nullopt, policy) ==
                  requirement::required);
        }
        for (auto svc : {service::s3, service::kms, service::logs, service::monitoring}) {
            CHECK(requirement_for(svc, old_agent, eu, policy) == requirement::optional);
        }
    }
    SECTION("ec2messages around 3.3.40.0") {
        CHECK(requirement_for(service::ec2messages, version(3, 3, 40, 0), eu, policy) ==
              requirement::not_required);
        CHECK(requirement_for(service::ec2messages, version(3, 3, 39, 9), eu, policy) ==
              requirement::required);
        CHECK(requirement_for(service::ec2messages, version(4, 0, 0, 0), eu, policy) ==
              requirement::not_required);
        CHECK(requirement_for(service::ec2messages, std::nullopt, eu, policy) ==
              requirement::required);
    }
    SECTION("ec2messages is unsupported in the listed regions, whatever the case") {
        CHECK(requirement_for(service::ec2messages, new_agent, mx, policy) ==
              requirement::unsupported);
        CHECK(requirement_for(service::ec2messages, old_agent, mx, policy) ==
              requirement::unsupported);
        CHECK(ec2messages_unsupported_in(policy, "AP-Southeast-7"));
        CHECK_FALSE(ec2messages_unsupported_in(policy, "ap-southeast-1"));
    }
    SECTION("the report keeps one requirement per endpoint, in order") {
        auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
        o.endpoints.push_back(reachable(service::s3, {"10.0.1.40"}));
        const auto r = run(o);
        REQUIRE(r.requirements.size() == r.seen.endpoints.size());
        CHECK(r.requirements ==
              std::vector<requirement>{requirement::required, requirement::required,
                                       requirement::not_required, requirement::optional});
    }
}

TEST_CASE("the agent's version and the region's age decide about ec2messages", "[verdict]") {
    verdict_policy policy;
    policy.ec2messages_unsupported_regions = {"ap-southeast-7"};

    SECTION("an unknown version assumes ec2messages is required and says so") {
        auto o = standard(std::nullopt, dns_failed(service::ec2messages, failure_reason::nxdomain));
        o.agent.notes.push_back("cannot run /usr/bin/amazon-ssm-agent: Permission denied");
        const auto r = run(o);
        INFO(ids(r));
        CHECK(need(r, service::ec2messages) == requirement::required);
        const auto* f = find(r, "agent_version_unknown");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "assumed required"));
        CHECK(contains(f->message, "Permission denied"));
        const auto* u = find(r, "required_endpoint_unreachable");
        REQUIRE(u != nullptr);
        CHECK(contains(u->message, "version is unknown"));
        CHECK(r.overall == verdict::critical);
    }
    SECTION("an old agent in a region without ec2messages is critical") {
        auto o = standard(old_agent, dns_failed(service::ec2messages, failure_reason::nxdomain));
        o.region = "ap-southeast-7";
        const auto r = run(o, policy);
        INFO(ids(r));
        const auto* f = find(r, "agent_too_old_for_region");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(contains(f->remedy, "3.3.40.0"));
        CHECK(need(r, service::ec2messages) == requirement::unsupported);
        CHECK_FALSE(has(r, "required_endpoint_unreachable"));
        CHECK(has(r, "ec2messages_unsupported_region"));
        CHECK(r.overall == verdict::critical);
    }
    SECTION("a new agent in such a region only hears that ec2messages is of no use") {
        auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
        o.region = "ap-southeast-7";
        const auto r = run(o, policy);
        INFO(ids(r));
        const auto* f = find(r, "ec2messages_unsupported_region");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "no use"));
        CHECK(r.overall == verdict::ok);
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
    }
}

TEST_CASE("an unreachable required endpoint names the phase, the reason and the fix", "[verdict]") {
    struct row {
        const char* name;
        endpoint_observation ep;
        const char* in_message;
        const char* in_remedy;
    };
    const std::vector<row> rows{
        {"nxdomain", dns_failed(service::ssmmessages, failure_reason::nxdomain),
         "dns failed (nxdomain)", "interface VPC endpoint com.amazonaws.eu-west-1.ssmmessages"},
        {"no_address", dns_failed(service::ssmmessages, failure_reason::no_address),
         "dns failed (no_address)", "with private DNS enabled"},
        {"servfail", dns_failed(service::ssmmessages, failure_reason::servfail),
         "dns failed (servfail)", "enableDnsSupport"},
        {"dns_timeout", dns_failed(service::ssmmessages, failure_reason::dns_timeout),
         "dns failed (dns_timeout)", "enableDnsHostnames"},
        {"dns_error", dns_failed(service::ssmmessages, failure_reason::dns_error),
         "dns failed (dns_error)", "resolv.conf"},
        {"connect timeout",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::connect,
                 failure_reason::timeout),
         "connect failed (timeout)", "must allow inbound TCP 443"},
        {"refused",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::connect, failure_reason::refused,
                 "Connection refused"),
         "connect failed (refused): Connection refused", "rejects port 443"},
        {"reset",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls, failure_reason::reset),
         "tls failed (reset)", "rejects port 443"},
        {"unreachable",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::connect,
                 failure_reason::unreachable),
         "connect failed (unreachable)", "route table"},
        {"tls timeout",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls, failure_reason::timeout),
         "tls failed (timeout)", "handshake stalled"},
        {"verify failed",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls,
                 failure_reason::tls_verify_failed, "unable to get local issuer certificate"),
         "unable to get local issuer certificate", "tls.ca_file"},
        {"handshake failed",
         failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls,
                 failure_reason::tls_handshake_failed, "wrong version number"),
         "tls failed (tls_handshake_failed)", "TLS 1.2"},
        {"proxy refused",
         failing(service::ssmmessages, {"10.0.9.9"}, probe_phase::proxy,
                 failure_reason::proxy_refused, "403 Forbidden"),
         "proxy failed (proxy_refused)", "refuses CONNECT"},
    };
    for (const auto& row : rows) {
        DYNAMIC_SECTION(row.name) {
            auto o = instance(new_agent);
            o.endpoints.push_back(with_session(reachable(service::ssm, {"10.0.1.10"})));
            o.endpoints.push_back(row.ep);
            const auto r = run(o);
            INFO(ids(r));
            const auto* f = find(r, "required_endpoint_unreachable");
            REQUIRE(f != nullptr);
            CHECK(f->level == severity::critical);
            CHECK(f->svc == service::ssmmessages);
            CHECK(contains(f->message, "ssmmessages.eu-west-1.amazonaws.com"));
            CHECK(contains(f->message, row.in_message));
            CHECK(contains(f->remedy, row.in_remedy));
            CHECK(r.overall == verdict::critical);
            CHECK_FALSE(has(r, "control_channel_missing"));
        }
    }
}

TEST_CASE("failures name what made them likely", "[verdict]") {
    auto o = instance(new_agent);
    o.endpoints.push_back(reachable(service::ssm, {"10.0.1.10"}));

    SECTION("an expired certificate is called expired") {
        auto ep = failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls,
                          failure_reason::tls_verify_failed, "certificate has expired");
        ep.addresses[0].probe.tls = tls_details{};
        ep.addresses[0].probe.tls->issuer = "CN=Corp Inspection CA";
        ep.addresses[0].probe.tls->not_after =
            std::chrono::sys_days{std::chrono::year{2026} / 11 / 1};
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "expired on 2026-11-01 00:00:00 UTC"));
        CHECK(contains(f->remedy, "clock"));
    }
    SECTION("a verify failure names the issuer and the override to fix") {
        auto ep = failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls,
                          failure_reason::tls_verify_failed, "hostname mismatch");
        ep.target.overridden = true;
        ep.target.override_key = "Mgs.Endpoint";
        ep.addresses[0].probe.tls = tls_details{};
        ep.addresses[0].probe.tls->issuer = "CN=Corp Inspection CA";
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "CN=Corp Inspection CA"));
        CHECK(contains(f->remedy, "fix Mgs.Endpoint"));
    }
    SECTION("a name from an override that does not resolve points at the override") {
        auto ep = dns_failed(service::ssmmessages, failure_reason::nxdomain);
        ep.target.overridden = true;
        ep.target.override_key = "Mgs.Endpoint";
        ep.target.host = "ssmmessages.example.internal";
        o.agent_config.path = "/etc/amazon/ssm/amazon-ssm-agent.json";
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "Mgs.Endpoint to ssmmessages.example.internal"));
        CHECK(contains(f->remedy, "amazon-ssm-agent.json"));
        const auto* o2 = find(r, "endpoint_overridden");
        REQUIRE(o2 != nullptr);
        CHECK(o2->level == severity::info);
        CHECK(contains(o2->message, "Mgs.Endpoint"));
        CHECK(contains(o2->message, "ssmmessages.example.internal"));
        CHECK(contains(o2->message, "instead of ssmmessages.eu-west-1.amazonaws.com"));
    }
    SECTION("an override that names no host is as bad for the agent as for ssm-doctor") {
        endpoint_observation ep;
        ep.target.svc = service::ssmmessages;
        ep.target.overridden = true;
        ep.target.override_key = "Mgs.Region";
        ep.target.override_value = "eu west 1";
        o.endpoints.push_back(ep);
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "endpoint_override_invalid");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(contains(f->message, "Mgs.Region to \"eu west 1\""));
        CHECK_FALSE(has(r, "endpoint_not_probed"));
        CHECK_FALSE(has(r, "endpoint_overridden"));
        CHECK(r.overall == verdict::critical);
    }
    SECTION("an http:// override is a warning") {
        auto ep = with_session(reachable(service::ssmmessages, {"10.0.1.20"}));
        ep.target.overridden = true;
        ep.target.override_key = "Mgs.Endpoint";
        ep.target.override_value = "http://ssmmessages.eu-west-1.amazonaws.com";
        ep.target.plain_http = true;
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "endpoint_override_plain_http");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "without TLS"));
        CHECK(contains(f->remedy, "https://ssmmessages.eu-west-1.amazonaws.com"));
    }
    SECTION("a public address timing out suggests the missing NAT path") {
        o.endpoints.push_back(failing(service::ssmmessages, {"52.95.120.20"}, probe_phase::connect,
                                      failure_reason::timeout));
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "NAT gateway"));
        CHECK(contains(f->remedy, "Private DNS is missing"));
    }
    SECTION("connections the agent holds despite the failure are pointed out") {
        auto ep = failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::tls,
                          failure_reason::tls_verify_failed);
        ep.sessions.push_back(session_to(ep));
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->message, "Yet the agent holds 1 connection to it"));
    }
    SECTION("an endpoint without any probed address still gets a finding") {
        auto ep = reachable(service::ssmmessages, {});
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->message, "no address was probed"));
    }
}

TEST_CASE("optional and unneeded endpoints that fail are not critical", "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));

    SECTION("an optional endpoint gives a warning naming its use") {
        o.endpoints.push_back(
            failing(service::s3, {"10.0.1.40"}, probe_phase::connect, failure_reason::timeout));
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "optional_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(f->svc == service::s3);
        CHECK(contains(f->message, "S3"));
        CHECK(contains(f->remedy, "com.amazonaws.eu-west-1.s3"));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("ec2messages failing for a new agent is information only") {
        endpoint_of(o, service::ec2messages) = failing(
            service::ec2messages, {"10.0.1.30"}, probe_phase::connect, failure_reason::timeout);
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "ec2messages_unreachable_not_needed");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(r.overall == verdict::ok);
    }
}

TEST_CASE("addresses tell about partial reachability, private DNS and shared endpoints",
          "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));

    SECTION("one failing address of several is a warning") {
        auto& ssm = endpoint_of(o, service::ssm);
        ssm = reachable(service::ssm, {"10.0.1.10", "10.0.2.10"});
        ssm.addresses[1].probe =
            tls_failed(probe_phase::connect, failure_reason::timeout, "no answer in 3000 ms");
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "endpoint_partially_reachable");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "1 of 2"));
        CHECK(contains(f->message, "10.0.2.10 connect failed (timeout)"));
        CHECK_FALSE(has(r, "required_endpoint_unreachable"));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("a name resolving to public addresses among private ones lacks private DNS") {
        endpoint_of(o, service::ssm) = reachable(service::ssm, {"52.94.1.1"});
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "private_dns_missing");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(f->svc == service::ssm);
        CHECK(contains(f->message, "52.94.1.1"));
        CHECK(contains(f->remedy, "com.amazonaws.eu-west-1.ssm"));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("when that endpoint is also unreachable, the critical finding covers it") {
        endpoint_of(o, service::ssm) =
            failing(service::ssm, {"52.94.1.1"}, probe_phase::connect, failure_reason::timeout);
        const auto r = run(o);
        INFO(ids(r));
        CHECK_FALSE(has(r, "private_dns_missing"));
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->remedy, "Private DNS is missing"));
        CHECK(contains(f->message, "only to public addresses"));
    }
    SECTION("in an IPv6-only subnet, a name outside the VPC's IPv6 blocks lacks private DNS") {
        // The endpoints in the VPC have global addresses from its /56, like every address there.
        const auto vpc6 = *parse_cidr("2600:1f18:4a2:7e00::/56");
        const auto placed = [&](endpoint_observation ep) {
            for (auto& a : ep.addresses) {
                a.in_vpc = vpc6.contains(a.ip);
            }
            return ep;
        };
        o.endpoints = {
            placed(with_session(reachable(service::ssm, {"2600:1f18:4a2:7e01::10"}))),
            placed(with_session(reachable(service::ssmmessages, {"2600:1f14:c0:9b00::5"})))};
        auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "private_dns_missing");
        REQUIRE(f != nullptr);
        CHECK(f->svc == service::ssmmessages);
        CHECK(contains(f->message, "2600:1f14:c0:9b00::5"));

        // Without the VPC's IPv6 blocks a global address may be the VPC's own: nothing is said.
        for (auto& ep : o.endpoints) {
            for (auto& a : ep.addresses) {
                a.in_vpc.reset();
            }
        }
        r = run(o);
        INFO(ids(r));
        CHECK_FALSE(has(r, "private_dns_missing"));
    }
    SECTION("s3 on public addresses is a gateway endpoint, not missing private DNS") {
        o.endpoints.push_back(reachable(service::s3, {"52.218.1.1"}));
        CHECK_FALSE(has(run(o), "private_dns_missing"));
    }
    SECTION("an instance that uses public endpoints throughout has nothing missing") {
        o.endpoints = {with_session(reachable(service::ssm, {"52.94.1.1"})),
                       with_session(reachable(service::ssmmessages, {"52.94.1.2"}))};
        const auto r = run(o);
        INFO(ids(r));
        CHECK_FALSE(has(r, "private_dns_missing"));
        CHECK(r.overall == verdict::ok);
    }
    SECTION("private addresses outside the VPC are a shared endpoint") {
        endpoint_of(o, service::ssm) = reachable(service::ssm, {"10.1.0.5"});
        const auto r = run(o);
        const auto* f = find(r, "endpoint_outside_vpc");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "10.1.0.5"));
        CHECK(r.overall == verdict::ok);
    }
    SECTION("without the VPC's CIDR blocks nothing is said about them") {
        endpoint_of(o, service::ssm) = reachable(service::ssm, {"10.1.0.5"});
        endpoint_of(o, service::ssm).addresses[0].in_vpc.reset();
        CHECK_FALSE(has(run(o), "endpoint_outside_vpc"));
    }
}

TEST_CASE("a certificate close to its end is a warning", "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
    auto& ssm = endpoint_of(o, service::ssm);

    SECTION("five days left") {
        ssm.addresses[0].probe.tls->not_after = now + std::chrono::days{5};
        const auto r = run(o);
        const auto* f = find(r, "certificate_expiring");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(f->svc == service::ssm);
        CHECK(contains(f->message, "2026-12-08 12:00:00 UTC"));
        CHECK(contains(f->message, "5 days"));
    }
    SECTION("thirty days left is fine by default, not with a longer warning time") {
        ssm.addresses[0].probe.tls->not_after = now + std::chrono::days{30};
        CHECK_FALSE(has(run(o), "certificate_expiring"));
        verdict_policy policy;
        policy.certificate_warning_days = 40;
        CHECK(has(run(o, policy), "certificate_expiring"));
    }
}

TEST_CASE("the agent's own state comes first", "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));

    SECTION("not installed") {
        o.agent = agent_observation{};
        for (auto& ep : o.endpoints) {
            ep.sessions.clear();
        }
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_not_installed");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(r.overall == verdict::critical);
        CHECK_FALSE(has(r, "agent_version_unknown"));
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK_FALSE(has(r, "agent_hibernating"));
    }
    SECTION("installed but not running") {
        o.agent.processes.clear();
        for (auto& ep : o.endpoints) {
            ep.sessions.clear();
        }
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_not_running");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(contains(f->remedy, "systemctl enable --now amazon-ssm-agent"));
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK_FALSE(has(r, "sessions_unattributed"));
        o.agent.method = install_method::snap;
        const auto snap = run(o);
        REQUIRE(has(snap, "agent_not_running"));
        CHECK(contains(find(snap, "agent_not_running")->remedy,
                       "snap.amazon-ssm-agent.amazon-ssm-agent"));
    }
    SECTION("running without its worker although ssm is reachable") {
        o.agent.processes.pop_back();
        for (auto& ep : o.endpoints) {
            ep.sessions.clear();
        }
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_worker_not_running");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->remedy, "Retrieve credentials produced error"));
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("an invalid agent config is named with its error") {
        o.agent_config.path = "/etc/amazon/ssm/amazon-ssm-agent.json";
        o.agent_config.present = true;
        o.agent_config.error = "line 3, column 5: expected ','";
        const auto r = run(o);
        const auto* f = find(r, "agent_config_invalid");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "line 3, column 5"));
        CHECK(contains(f->message, "/etc/amazon/ssm/amazon-ssm-agent.json"));
    }
    SECTION("a present, valid agent config says nothing") {
        o.agent_config.present = true;
        CHECK_FALSE(has(run(o), "agent_config_invalid"));
    }
}

TEST_CASE("an agent that cannot reach ssm hibernates", "[verdict]") {
    auto o = instance(new_agent);
    o.endpoints.push_back(
        failing(service::ssm, {"10.0.1.10"}, probe_phase::connect, failure_reason::timeout));
    o.endpoints.push_back(reachable(service::ssmmessages, {"10.0.1.20"}));
    o.endpoints.push_back(reachable(service::ec2messages, {"10.0.1.30"}));

    SECTION("no connection anywhere: hibernation is explained in a finding of its own") {
        o.agent.hibernate_log_written = now - 25min;
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_hibernating");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::critical);
        CHECK(contains(f->message, "first health ping"));
        CHECK(contains(f->message, "5 minutes"));
        CHECK(contains(f->message, "25 min ago"));
        CHECK(contains(f->remedy, "systemctl restart amazon-ssm-agent"));
        CHECK(has(r, "required_endpoint_unreachable"));
        // Hibernation, not a messaging fault.
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK(r.overall == verdict::critical);
    }
    SECTION("without a worker the supervisor is waiting for ssm") {
        o.agent.processes.pop_back();
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_hibernating");
        REQUIRE(f != nullptr);
        CHECK(contains(f->message, "only amazon-ssm-agent runs"));
        CHECK_FALSE(has(r, "agent_worker_not_running"));
    }
    SECTION("unattributed connections with no hibernate.log prove nothing") {
        o.sockets.attribution_complete = false;
        const auto r = run(o);
        CHECK_FALSE(has(r, "agent_hibernating"));
        CHECK(has(r, "sessions_unattributed"));
    }
    SECTION("a connection the agent holds means it is not hibernating") {
        o.endpoints[1].sessions.push_back(session_to(o.endpoints[1]));
        CHECK_FALSE(has(run(o), "agent_hibernating"));
    }
}

TEST_CASE("a missing control channel is a warning only when absence means something", "[verdict]") {
    auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
    endpoint_of(o, service::ssmmessages).sessions.clear();

    SECTION("attributed, direct, worker running: warning with IAM advice") {
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "control_channel_missing");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(f->svc == service::ssmmessages);
        CHECK(contains(f->remedy, "ssmmessages:CreateControlChannel"));
        CHECK(r.overall == verdict::warning);
    }
    SECTION("unattributed: no conclusion, but a warning that says why") {
        o.sockets.attribution_complete = false;
        const auto r = run(o);
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK(count(r, "sessions_unattributed") == 1);
    }
    SECTION("through a proxy: no conclusion") {
        for (auto& ep : o.endpoints) {
            ep.via_proxy = true;
        }
        o.agent.proxy = proxy("http://proxy.internal:3128", "169.254.169.254");
        CHECK_FALSE(has(run(o), "control_channel_missing"));
    }
}

TEST_CASE("a proxy is reported without its credentials", "[verdict]") {
    auto o = instance(new_agent);
    for (auto svc : {service::ssm, service::ssmmessages, service::ec2messages}) {
        auto ep = reachable(svc, {"10.0.9.9"});
        ep.via_proxy = true;
        ep.dns.host = "proxy.internal";
        o.endpoints.push_back(ep);
    }
    o.agent.proxy = proxy("http://user:s3cret@proxy.internal:3128", "169.254.169.254,localhost");
    o.proxy_sessions.push_back(session_to(o.endpoints[0]));

    SECTION("the proxy is named, sessions are not judged") {
        const auto r = run(o);
        INFO(ids(r));
        const auto* f = find(r, "agent_uses_proxy");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "proxy.internal:3128"));
        CHECK_FALSE(contains(f->message, "s3cret"));
        CHECK(contains(f->message, "1 connection to the proxy"));
        CHECK_FALSE(has(r, "control_channel_missing"));
        CHECK_FALSE(has(r, "ec2messages_endpoint_unused"));
        CHECK_FALSE(has(r, "private_dns_missing"));
        CHECK_FALSE(has(r, "proxy_without_imds_exclusion"));
        CHECK(r.overall == verdict::ok);
    }
    SECTION("NO_PROXY without the IMDS address is a warning") {
        o.agent.proxy->no_proxy = "localhost";
        const auto r = run(o);
        const auto* f = find(r, "proxy_without_imds_exclusion");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->remedy, "169.254.169.254"));
    }
    SECTION("a proxy refusing CONNECT names the redacted proxy in the remedy") {
        o.endpoints[1].addresses[0].probe =
            tls_failed(probe_phase::proxy, failure_reason::proxy_refused, "403 Forbidden");
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->message, "through the proxy"));
        CHECK(contains(f->remedy, "proxy.internal:3128"));
        CHECK_FALSE(contains(f->remedy, "s3cret"));
        CHECK(contains(f->remedy, "403 Forbidden"));
    }
    SECTION("the proxy's name not resolving is about the proxy, not a VPC endpoint") {
        auto& ep = o.endpoints[0];
        ep.addresses.clear();
        ep.dns.failure = probe_failure{probe_phase::dns, failure_reason::nxdomain, ""};
        const auto r = run(o);
        const auto* f = find(r, "required_endpoint_unreachable");
        REQUIRE(f != nullptr);
        CHECK(contains(f->message, "resolving the proxy proxy.internal"));
        CHECK(contains(f->remedy, "HTTPS_PROXY"));
    }
}

TEST_CASE("the region decides between unknown and a verdict", "[verdict]") {
    SECTION("no region: unknown, with advice") {
        auto o = instance(new_agent);
        o.region.reset();
        o.region_source.clear();
        o.imds = imds_observation{};
        o.imds.failure = probe_failure{probe_phase::connect, failure_reason::timeout, ""};
        for (auto svc : {service::ssm, service::ssmmessages, service::ec2messages}) {
            endpoint_observation ep;
            ep.target.svc = svc;
            o.endpoints.push_back(ep);
        }
        const auto r = run(o);
        INFO(ids(r));
        CHECK(r.overall == verdict::unknown);
        const auto* f = find(r, "region_unknown");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::warning);
        CHECK(contains(f->message, "IMDS connect failed (timeout)"));
        CHECK(contains(f->remedy, "`region`"));
        CHECK(contains(f->remedy, "ssm-doctor.yaml"));
        CHECK_FALSE(has(r, "endpoint_not_probed"));
        CHECK_FALSE(has(r, "imds_unreachable"));
        CHECK(r.requirements.size() == 3);

        SECTION("but a critical finding still makes it critical") {
            o.agent.processes.clear();
            CHECK(run(o).overall == verdict::critical);
        }
    }
    SECTION("IMDS failing with the region set by the operator is information") {
        auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
        o.region_source = "config";
        o.imds = imds_observation{};
        o.imds.failure = probe_failure{probe_phase::http, failure_reason::http_error, "403"};
        const auto r = run(o);
        const auto* f = find(r, "imds_unreachable");
        REQUIRE(f != nullptr);
        CHECK(f->level == severity::info);
        CHECK(contains(f->message, "comes from ssm-doctor.yaml"));
        CHECK(r.overall == verdict::ok);

        SECTION("and a warning when the region came from the agent's config") {
            o.region_source = "agent_config";
            const auto r2 = run(o);
            REQUIRE(has(r2, "imds_unreachable"));
            CHECK(find(r2, "imds_unreachable")->level == severity::warning);
            CHECK(r2.overall == verdict::warning);
        }
    }
    SECTION("an endpoint without a host under a known region is said to be unprobed") {
        auto o = standard(new_agent, reachable(service::ec2messages, {"10.0.1.30"}));
        endpoint_observation ep;
        ep.target.svc = service::kms;
        o.endpoints.push_back(ep);
        const auto r = run(o);
        const auto* f = find(r, "endpoint_not_probed");
        REQUIRE(f != nullptr);
        CHECK(f->svc == service::kms);
    }
}

TEST_CASE("findings are sorted most severe first, keeping their order otherwise", "[verdict]") {
    auto o = instance(old_agent);
    o.endpoints.push_back(dns_failed(service::ssm, failure_reason::nxdomain));
    o.endpoints.push_back(failing(service::ssmmessages, {"10.0.1.20"}, probe_phase::connect,
                                  failure_reason::timeout));
    o.endpoints.push_back(dns_failed(service::ec2messages, failure_reason::nxdomain));
    o.endpoints.push_back(
        failing(service::logs, {"10.0.1.50"}, probe_phase::connect, failure_reason::refused));
    o.agent_config.present = true;
    o.agent_config.error = "bad JSON";
    const auto r = run(o);
    INFO(ids(r));
    REQUIRE(r.findings.size() >= 5);
    for (std::size_t i = 1; i < r.findings.size(); ++i) {
        CHECK(r.findings[i - 1].level >= r.findings[i].level);
    }
    std::vector<service> unreachable;
    for (const auto& f : r.findings) {
        if (f.id == "required_endpoint_unreachable") {
            unreachable.push_back(*f.svc);
        }
    }
    CHECK(unreachable ==
          std::vector<service>{service::ssm, service::ssmmessages, service::ec2messages});
    CHECK(r.findings.back().level == severity::info);
    CHECK(has(r, "agent_hibernating"));
    CHECK(has(r, "optional_endpoint_unreachable"));
    CHECK(r.overall == verdict::critical);
}

TEST_CASE("the overall verdict maps from the findings", "[verdict]") {
    const auto f = [](severity level) { return finding{"x", level, std::nullopt, "", ""}; };
    CHECK(overall_verdict({}, true) == verdict::ok);
    CHECK(overall_verdict({f(severity::info)}, true) == verdict::ok);
    CHECK(overall_verdict({f(severity::info), f(severity::warning)}, true) == verdict::warning);
    CHECK(overall_verdict({f(severity::warning), f(severity::critical)}, true) ==
          verdict::critical);
    CHECK(overall_verdict({}, false) == verdict::unknown);
    CHECK(overall_verdict({f(severity::warning)}, false) == verdict::unknown);
    CHECK(overall_verdict({f(severity::critical)}, false) == verdict::critical);
    // The values are the exit codes.
    CHECK(static_cast<int>(verdict::ok) == 0);
    CHECK(static_cast<int>(verdict::unknown) == 3);
}

TEST_CASE("judge reads no clock: the same input gives the same report", "[verdict]") {
    auto o = standard(new_agent, with_session(reachable(service::ec2messages, {"10.0.1.30"})));
    o.agent.processes[1].started = now - 30s;
    o.agent.hibernate_log_written = now - 2h;
    endpoint_of(o, service::ssm).addresses[0].probe.tls->not_after = now + std::chrono::days{3};
    const auto a = judge(o, verdict_policy{}, now);
    const auto b = judge(o, verdict_policy{}, now);
    CHECK(a.checked_at == now);
    CHECK(a.overall == b.overall);
    CHECK(a.requirements == b.requirements);
    REQUIRE(a.findings.size() == b.findings.size());
    for (std::size_t i = 0; i < a.findings.size(); ++i) {
        CHECK(a.findings[i].id == b.findings[i].id);
        CHECK(a.findings[i].message == b.findings[i].message);
        CHECK(a.findings[i].remedy == b.findings[i].remedy);
    }
    // Moving "now" moves every time-dependent conclusion with it.
    const auto later = judge(o, verdict_policy{}, now + 10min);
    CHECK(has(later, "ec2messages_still_polled"));
    CHECK_FALSE(has(later, "ec2messages_startup_polling"));
    CHECK(has(a, "ec2messages_startup_polling"));
}

TEST_CASE("names and helpers read as documented", "[verdict]") {
    CHECK(vpc_endpoint_service("eu-west-1", service::ssmmessages) ==
          "com.amazonaws.eu-west-1.ssmmessages");
    CHECK(vpc_endpoint_service("cn-north-1", service::ssm) == "cn.com.amazonaws.cn-north-1.ssm");
    CHECK(to_string(severity::critical) == "critical");
    CHECK(to_string(verdict::unknown) == "unknown");
    CHECK(to_string(requirement::not_required) == "not_required");
    CHECK(to_string(requirement::unsupported) == "unsupported");
}
