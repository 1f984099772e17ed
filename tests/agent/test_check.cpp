// SPDX-License-Identifier: Apache-2.0
// Tests of one whole check on loopback: probes run in parallel, the deadline holds, and the
// agent's sessions are matched to endpoint addresses.
#include <utility>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "agent/check.hpp"
#include "probes/address.hpp"
#include "tests/support/loopback_servers.hpp"
#include "tests/support/test_certs.hpp"

using namespace ssm_doctor;
using namespace ssm_doctor::testing;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

const std::vector<std::string> lab_hosts{"ssm.lab.test", "ssmmessages.lab.test",
                                         "ec2messages.lab.test"};

// "0100007F:01BB": how /proc/net/tcp prints 127.0.0.1:443 on a little-endian host.
std::string proc_net_v4(const asio::ip::tcp::endpoint& ep) {
    const auto bytes = ep.address().to_v4().to_bytes();
    char text[16];
    std::snprintf(text, sizeof text, "%02X%02X%02X%02X:%04X", bytes[3], bytes[2], bytes[1],
                  bytes[0], ep.port());
    return text;
}

// One loopback server per endpoint, each with a behaviour of its own.
class endpoint_servers : public endpoint_server_set {
public:
    explicit endpoint_servers(const std::vector<server_behaviour>& behaviours)
        : endpoint_server_set(servers_for(behaviours)) {}

private:
    static std::vector<server> servers_for(const std::vector<server_behaviour>& behaviours) {
        std::vector<server> servers;
        for (std::size_t i = 0; i < behaviours.size(); ++i) {
            servers.push_back({server_spec(lab_hosts[i]), behaviours[i]});
        }
        return servers;
    }
};

// A host of its own for the check: overrides in the agent's config point every endpoint at a
// loopback server, /etc/hosts names them, IMDS is a closed port, /proc is a directory we fill.
struct fake_host {
    temp_dir dir;
    check_options options;

    explicit fake_host(const endpoint_servers& servers) {
        const auto json = "{\"Ssm\": {\"Endpoint\": \"https://ssm.lab.test:" +
                          std::to_string(servers.endpoint(0).port()) +
                          "\"}, \"Mgs\": {\"Endpoint\": \"ssmmessages.lab.test:" +
                          std::to_string(servers.endpoint(1).port()) +
                          "\"}, \"Mds\": {\"Endpoint\": \"https://ec2messages.lab.test:" +
                          std::to_string(servers.endpoint(2).port()) + "\"}}";
        options.config.agent_config = dir.write("amazon-ssm-agent.json", json);
        options.config.tls_ca_file = dir.write("ca.pem", servers.ca_pem());
        options.config.agent_binary = dir.path() / "no-agent-here";
        options.config.agent_log_dir = dir.path() / "log";
        options.config.imds_endpoint = "http://127.0.0.1:9";  // discard: nothing listens
        options.config.imds_timeout = 300ms;
        options.config.probe_timeout = 800ms;
        options.region = "us-east-1";
        options.host.hosts_file = dir.write(
            "hosts", "127.0.0.1 ssm.lab.test ssmmessages.lab.test ec2messages.lab.test\n");
        options.host.resolv_conf = dir.write("resolv.conf", "nameserver 127.0.0.1\n");
        options.host.proc_root = dir.path() / "proc";
        std::filesystem::create_directories(options.host.proc_root);
        options.ask_package_managers = false;
    }

    // An agent worker (pid 4242) holding `remote` with socket inode 777.
    void add_worker_session(const asio::ip::tcp::endpoint& remote) {
        const auto proc = options.host.proc_root;
        std::filesystem::create_directories(proc / "net");
        std::filesystem::create_directories(proc / "4242" / "fd");
        dir.write("proc/stat", "cpu  1 2 3 4\nbtime 1764000000\n");
        dir.write("proc/net/tcp",
                  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
                  "   uid  timeout inode\n"
                  "   0: 0100007F:9C40 " +
                      proc_net_v4(remote) +
                      " 01 00000000:00000000 00:00000000 00000000     0        0 777 1 "
                      "0000000000000000 20 4 30 10 -1\n");
        dir.write("proc/4242/stat",
                  "4242 (ssm-agent-worke) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 "
                  "9 0 5000 1000000 300 18446744073709551615\n");
        std::filesystem::create_symlink("/usr/bin/ssm-agent-worker", proc / "4242" / "exe");
        std::filesystem::create_symlink("socket:[777]", proc / "4242" / "fd" / "7");
    }
};

const endpoint_observation& endpoint_of(const observations& seen, service svc) {
    for (const auto& ep : seen.endpoints) {
        if (ep.target.svc == svc) {
            return ep;
        }
    }
    FAIL("no endpoint for " << to_string(svc));
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a check probes the hosts the agent's config names and records each outcome", "[check]") {
    endpoint_servers servers(
        {server_behaviour::tls, server_behaviour::tls, server_behaviour::reset_after_accept});
    fake_host host(servers);

    const auto seen = run_check(host.options);

    CHECK(seen.region == "us-east-1");
    CHECK(seen.region_source == "option");
    CHECK_FALSE(seen.imds.reachable);
    REQUIRE(seen.endpoints.size() == 3);

    const auto& ssm = endpoint_of(seen, service::ssm);
    CHECK(ssm.target.host == "ssm.lab.test");
    CHECK(ssm.target.overridden);
    CHECK(ssm.dns.source == "hosts");
    CHECK(ssm.reachable());
    REQUIRE(ssm.addresses.size() == 1);
    CHECK(ssm.addresses[0].kind == address_kind::loopback);
    CHECK_FALSE(ssm.addresses[0].in_vpc);
    REQUIRE(ssm.addresses[0].probe.tls);
    CHECK(ssm.addresses[0].probe.tls->subject_alt_names ==
          std::vector<std::string>{"ssm.lab.test"});

    CHECK(endpoint_of(seen, service::ssmmessages).reachable());

    const auto& ec2messages = endpoint_of(seen, service::ec2messages);
    CHECK_FALSE(ec2messages.reachable());
    REQUIRE(ec2messages.addresses.size() == 1);
    REQUIRE(ec2messages.addresses[0].probe.failure);
    CHECK(ec2messages.addresses[0].probe.failure->reason == failure_reason::reset);
}

TEST_CASE("a check ends on time when every endpoint is silent, probing them in parallel",
          "[check][deadline]") {
    endpoint_servers servers(
        {server_behaviour::silent, server_behaviour::silent, server_behaviour::silent});
    fake_host host(servers);
    host.options.config.probe_timeout = 600ms;

    const auto started = std::chrono::steady_clock::now();
    const auto seen = run_check(host.options);
    const auto took = std::chrono::steady_clock::now() - started;

    for (const auto& ep : seen.endpoints) {
        INFO(to_string(ep.target.svc));
        REQUIRE(ep.addresses.size() == 1);
        REQUIRE(ep.addresses[0].probe.failure);
        CHECK(ep.addresses[0].probe.failure->phase == probe_phase::tls);
        CHECK(ep.addresses[0].probe.failure->reason == failure_reason::timeout);
    }
    // One after another would take 1.8 s; the bound leaves room for a slow machine.
    CHECK(took >= 600ms);
    CHECK(took < 1500ms);
}

TEST_CASE("an agent process's connection is attributed to the endpoint it goes to",
          "[check][sockets]") {
    endpoint_servers servers({server_behaviour::tls, server_behaviour::tls, server_behaviour::tls});
    fake_host host(servers);
    host.add_worker_session(servers.endpoint(1));

    const auto seen = run_check(host.options);

    REQUIRE(seen.agent.processes.size() == 1);
    CHECK(seen.agent.processes[0].name == "ssm-agent-worker");
    CHECK(seen.sockets.table_read);
    const auto& ssmmessages = endpoint_of(seen, service::ssmmessages);
    REQUIRE(ssmmessages.sessions.size() == 1);
    CHECK(ssmmessages.sessions[0].pid == 4242);
    CHECK(ssmmessages.sessions[0].process == "ssm-agent-worker");
    CHECK(ssmmessages.sessions[0].remote == servers.endpoint(1));
    CHECK(endpoint_of(seen, service::ssm).sessions.empty());
    CHECK(endpoint_of(seen, service::ec2messages).sessions.empty());
}

TEST_CASE("an unusable tls.ca_file stops the check before any probe", "[check]") {
    endpoint_servers servers({server_behaviour::tls, server_behaviour::tls, server_behaviour::tls});
    fake_host host(servers);
    host.options.config.tls_ca_file = host.dir.path() / "missing.pem";
    CHECK_THROWS_WITH(run_check(host.options), Catch::Contains("missing.pem"));
}

TEST_CASE("an address is placed inside or outside the VPC only with its family's block list",
          "[check]") {
    observations seen;
    seen.imds.vpc_cidrs = {*parse_cidr("10.0.0.0/16"), *parse_cidr("2600:1f18:4a2:7e00::/56")};
    endpoint_observation ep;
    for (const char* ip : {"10.0.1.10", "52.94.1.1", "2600:1f18:4a2:7e01::10", "2600:1f14::5"}) {
        address_observation a;
        a.ip = boost::asio::ip::make_address(ip);
        ep.addresses.push_back(a);
    }
    seen.endpoints.push_back(ep);
    const auto placed = [&](bool v4_known, bool v6_known) {
        seen.imds.vpc_ipv4_known = v4_known;
        seen.imds.vpc_ipv6_known = v6_known;
        for (auto& a : seen.endpoints[0].addresses) {
            a.in_vpc.reset();
        }
        classify_addresses(seen);
        std::vector<std::optional<bool>> out;
        for (const auto& a : seen.endpoints[0].addresses) {
            out.push_back(a.in_vpc);
        }
        return out;
    };
    using placement = std::vector<std::optional<bool>>;
    const std::optional<bool> unknown;

    CHECK(placed(true, true) == placement{true, false, true, false});
    CHECK(placed(true, false) == placement{true, false, unknown, unknown});
    CHECK(placed(false, true) == placement{unknown, unknown, true, false});
    CHECK(placed(false, false) == placement{unknown, unknown, unknown, unknown});
    CHECK(seen.endpoints[0].addresses[0].kind == address_kind::private_v4);
    CHECK(seen.endpoints[0].addresses[3].kind == address_kind::public_address);
}
