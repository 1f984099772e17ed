// SPDX-License-Identifier: Apache-2.0
// Tests of the session tracker: two socket samples in, the agent's sessions opened and closed
// out, each named by the endpoint the last check resolved.
#include <utility>

#include <catch2/catch.hpp>

#include "agent/session_tracker.hpp"

using namespace ssm_doctor;
namespace asio = boost::asio;

namespace {

tcp_endpoint ep(const char* address, unsigned short port) {
    return {asio::ip::make_address(address), port};
}

tcp_session session(int pid, const char* process, const char* local, unsigned short local_port,
                    const char* remote, unsigned short remote_port = 443) {
    tcp_session s;
    s.local = ep(local, local_port);
    s.remote = ep(remote, remote_port);
    s.pid = pid;
    s.process = process;
    s.inode = 1000 + static_cast<std::uint64_t>(local_port);
    return s;
}

// Where the last check found the endpoints (as the lab lays them out).
const std::vector<endpoint_address> lab_endpoints{
    {"ssm", "ssm.us-east-1.amazonaws.com", asio::ip::make_address("10.99.1.11"), 443},
    {"ssmmessages", "ssmmessages.us-east-1.amazonaws.com", asio::ip::make_address("10.99.1.12"),
     443},
    {"ec2messages", "ec2messages.us-east-1.amazonaws.com", asio::ip::make_address("10.99.1.13"),
     443},
};

const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'764'000'000));

}  // namespace

TEST_CASE("the first sample reports every agent session as opened", "[sessions][watch]") {
    session_tracker tracker;
    const auto changes =
        tracker.update({session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12"),
                        session(200, "amazon-ssm-agent", "10.99.0.10", 40000, "10.99.1.11")},
                       lab_endpoints, t0);

    REQUIRE(changes.size() == 2);
    // Ordered by pid, then addresses.
    CHECK(changes[0].opened);
    CHECK(changes[0].pid == 200);
    CHECK(changes[0].service == "ssm");
    CHECK(changes[0].host == "ssm.us-east-1.amazonaws.com");
    CHECK(changes[0].process == "amazon-ssm-agent");
    CHECK(changes[0].local == "10.99.0.10:40000");
    CHECK(changes[0].remote == "10.99.1.11:443");
    CHECK(changes[0].at == t0);
    CHECK(changes[1].pid == 300);
    CHECK(changes[1].service == "ssmmessages");
    CHECK(tracker.sessions().size() == 2);
}

TEST_CASE("sessions that appear, end or stay are told apart", "[sessions][watch]") {
    session_tracker tracker;
    const auto control = session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12");
    const auto mds = session(300, "ssm-agent-worker", "10.99.0.10", 40002, "10.99.1.13");
    tracker.update({control, mds}, lab_endpoints, t0);

    SECTION("an unchanged sample reports nothing") {
        CHECK(tracker.update({mds, control}, lab_endpoints, t0).empty());
        CHECK(tracker.sessions().size() == 2);
    }
    SECTION("a dropped control channel is one closed session") {
        const auto changes = tracker.update({mds}, lab_endpoints, t0);
        REQUIRE(changes.size() == 1);
        CHECK_FALSE(changes[0].opened);
        CHECK(changes[0].service == "ssmmessages");
        CHECK(changes[0].local == "10.99.0.10:40001");
        CHECK(tracker.sessions().size() == 1);
    }
    SECTION("an agent upgrade: ec2messages closes, a new worker opens ssmmessages") {
        const auto new_worker = session(512, "ssm-agent-worker", "10.99.0.10", 40100, "10.99.1.12");
        const auto changes = tracker.update({new_worker}, lab_endpoints, t0);
        REQUIRE(changes.size() == 3);
        // Closed ones first, then the new one.
        CHECK_FALSE(changes[0].opened);
        CHECK(changes[0].service == "ssmmessages");
        CHECK_FALSE(changes[1].opened);
        CHECK(changes[1].service == "ec2messages");
        CHECK(changes[2].opened);
        CHECK(changes[2].pid == 512);
        CHECK(changes[2].service == "ssmmessages");
    }
    SECTION("an empty sample closes everything, and the next one opens afresh") {
        CHECK(tracker.update({}, lab_endpoints, t0).size() == 2);
        CHECK(tracker.sessions().empty());
        const auto again = tracker.update({control}, lab_endpoints, t0);
        REQUIRE(again.size() == 1);
        CHECK(again[0].opened);
    }
}

TEST_CASE("a session listed twice in one sample counts once", "[sessions][watch]") {
    session_tracker tracker;
    const auto s = session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12");
    CHECK(tracker.update({s, s}, lab_endpoints, t0).size() == 1);
    CHECK(tracker.update({s}, lab_endpoints, t0).empty());
    CHECK(tracker.sessions().size() == 1);
}

TEST_CASE("the same addresses under another pid are another session (pid reuse, handover)",
          "[sessions][watch]") {
    session_tracker tracker;
    tracker.update({session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12")},
                   lab_endpoints, t0);
    const auto changes = tracker.update(
        {session(301, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12")}, lab_endpoints, t0);
    REQUIRE(changes.size() == 2);
    CHECK_FALSE(changes[0].opened);
    CHECK(changes[0].pid == 300);
    CHECK(changes[1].opened);
    CHECK(changes[1].pid == 301);
}

TEST_CASE("a remote that no endpoint resolved to is kept with no service", "[sessions][watch]") {
    session_tracker tracker;
    SECTION("an address no endpoint has") {
        const auto changes =
            tracker.update({session(300, "ssm-agent-worker", "10.99.0.10", 40001, "203.0.113.12")},
                           lab_endpoints, t0);
        REQUIRE(changes.size() == 1);
        CHECK(changes[0].service.empty());
        CHECK(changes[0].host.empty());
        CHECK(changes[0].remote == "203.0.113.12:443");
    }
    SECTION("an endpoint's address on another port") {
        const auto changes = tracker.update(
            {session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12", 8443)},
            lab_endpoints, t0);
        REQUIRE(changes.size() == 1);
        CHECK(changes[0].service.empty());
    }
    SECTION("no check has resolved anything yet") {
        const auto changes = tracker.update(
            {session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12")}, {}, t0);
        REQUIRE(changes.size() == 1);
        CHECK(changes[0].service.empty());
    }
}

TEST_CASE("a closed session keeps the endpoint it was attributed to when it opened",
          "[sessions][watch]") {
    session_tracker tracker;
    const auto s = session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12");
    tracker.update({s}, lab_endpoints, t0);
    // DNS moved since: the endpoint now resolves elsewhere.
    const std::vector<endpoint_address> moved{{"ssmmessages", "ssmmessages.us-east-1.amazonaws.com",
                                               asio::ip::make_address("10.99.1.99"), 443}};
    const auto changes = tracker.update({}, moved, t0);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].service == "ssmmessages");
}

TEST_CASE("IPv4-mapped and IPv6 addresses are matched and written plainly", "[sessions][watch]") {
    CHECK(endpoint_text(ep("::ffff:10.99.1.12", 443)) == "10.99.1.12:443");
    CHECK(endpoint_text(ep("fd00::12", 443)) == "[fd00::12]:443");

    const std::vector<endpoint_address> v6{
        {"ssm", "ssm.example", asio::ip::make_address("fd00::11"), 443}};
    const auto mapped = ep("::ffff:10.99.1.11", 443);
    const auto* found = endpoint_for(mapped, lab_endpoints);
    REQUIRE(found != nullptr);
    CHECK(found->service == "ssm");
    REQUIRE(endpoint_for(ep("fd00::11", 443), v6) != nullptr);
    CHECK(endpoint_for(ep("fd00::12", 443), v6) == nullptr);
}

TEST_CASE("only the agent's sessions are followed", "[sessions][watch]") {
    socket_observation sample;
    sample.table_read = true;
    sample.sessions = {
        session(300, "ssm-agent-worker", "10.99.0.10", 40001, "10.99.1.12"),
        session(777, "renamed-agent", "10.99.0.10", 40002, "10.99.1.11"),  // pid from the check
        session(900, "curl", "10.99.0.10", 40003, "10.99.1.11"),
        session(0, "", "10.99.0.10", 40004, "10.99.1.11"),  // owner unknown
    };
    session_context context;
    context.agent_pids = {777};

    const auto kept = agent_sessions(sample, context);
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].pid == 300);  // by its executable's name
    CHECK(kept[1].pid == 777);  // by the check's list of agent processes
}

TEST_CASE("the context of a check names each resolved endpoint address and the ports to read",
          "[sessions][watch]") {
    observations seen;
    endpoint_observation ssm;
    ssm.target.svc = service::ssm;
    ssm.target.host = "ssm.lab.test";
    ssm.target.port = 8443;
    ssm.probed = true;
    ssm.dns.addresses = {asio::ip::make_address("10.99.1.11"),
                         asio::ip::make_address("::ffff:10.99.1.21")};
    endpoint_observation proxied;
    proxied.target.svc = service::ssmmessages;
    proxied.target.host = "ssmmessages.lab.test";
    proxied.probed = true;
    proxied.via_proxy = true;
    proxied.dns.addresses = {asio::ip::make_address("10.99.0.3")};
    endpoint_observation unprobed;
    unprobed.target.svc = service::ec2messages;
    seen.endpoints = {ssm, proxied, unprobed};
    seen.agent.processes = {{42, "amazon-ssm-agent", std::nullopt, {}},
                            {7, "ssm-agent-worker", std::nullopt, {}}};
    seen.agent.proxy = proxy_settings{"http://proxy.corp.internal:3128", ""};

    const auto context = session_context_of(seen);
    REQUIRE(context.endpoints.size() == 2);
    CHECK(context.endpoints[0].service == "ssm");
    CHECK(context.endpoints[0].host == "ssm.lab.test");
    CHECK(context.endpoints[0].port == 8443);
    CHECK(context.endpoints[1].address == asio::ip::make_address("10.99.1.21"));  // unmapped
    CHECK(context.agent_pids == std::vector<int>{7, 42});
    CHECK(context.ports == std::vector<unsigned short>{443, 3128, 8443});
}
