// SPDX-License-Identifier: Apache-2.0
// Tests of the CloudWatch log events: keys, EMF metadata, and fitting an event into 256 KiB.
#include <utility>

#include <catch2/catch.hpp>

#include "agent/events.hpp"
#include "agent/render.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
using boost::asio::ip::make_address;
using json = nlohmann::ordered_json;

namespace {

const auto checked_at = std::chrono::system_clock::time_point{} + 20'000 * 24h + 1234ms;

address_observation reachable_address(const char* ip, std::chrono::system_clock::time_point until) {
    address_observation a;
    a.ip = make_address(ip);
    a.kind = address_kind::private_v4;
    a.in_vpc = true;
    a.probe.ok = true;
    a.probe.connect_ms = 2ms;
    a.probe.tls_ms = 9ms;
    a.probe.tls = tls_details{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "CN=x", "CN=Lab CA", {}, until};
    return a;
}

endpoint_observation endpoint(service svc, const char* host) {
    endpoint_observation ep;
    ep.target.svc = svc;
    ep.target.host = host;
    ep.target.default_host = host;
    ep.probed = true;
    return ep;
}

report sample_report() {
    observations seen;
    seen.region = "eu-west-1";
    seen.region_source = "imds";
    seen.imds.instance_id = "i-0abc";
    seen.sockets.table_read = true;
    seen.sockets.attribution_complete = true;

    auto ssmmessages = endpoint(service::ssmmessages, "ssmmessages.eu-west-1.amazonaws.com");
    // Two addresses: the later certificate is the representative's, the earlier one counts.
    ssmmessages.addresses.push_back(reachable_address("10.0.2.20", checked_at + 30 * 24h));
    ssmmessages.addresses.push_back(reachable_address("10.0.1.10", checked_at + 12 * 24h));
    ssmmessages.sessions.push_back({{make_address("10.0.0.5"), 40000},
                                    {make_address("10.0.2.20"), 443},
                                    7,
                                    840,
                                    "ssm-agent-worker"});

    auto ec2messages = endpoint(service::ec2messages, "ec2messages.eu-west-1.amazonaws.com");
    ec2messages.addresses.push_back(reachable_address("10.0.1.30", checked_at + 200 * 24h));

    auto ssm = endpoint(service::ssm, "ssm.eu-west-1.amazonaws.com");
    address_observation refused;
    refused.ip = make_address("10.0.1.40");
    refused.kind = address_kind::private_v4;
    refused.probe.failure = probe_failure{probe_phase::connect, failure_reason::refused, "no"};
    ssm.addresses.push_back(refused);

    auto kms = endpoint(service::kms, "");
    kms.probed = false;

    seen.endpoints = {ssmmessages, ec2messages, ssm, kms};

    report r;
    r.seen = std::move(seen);
    r.checked_at = checked_at;
    r.overall = verdict::critical;
    r.requirements = {requirement::required, requirement::not_required, requirement::required,
                      requirement::optional};
    r.findings.push_back({"required_endpoint_unreachable", severity::critical, service::ssm,
                          "ssm is not reachable", "fix it"});
    r.findings.push_back({"ec2messages_endpoint_unused", severity::info, service::ec2messages,
                          "not needed", "remove it"});
    return r;
}

event_context sample_context() {
    event_context c;
    c.instance_id = "i-fromcontext";
    c.region = "us-east-2";
    c.host_name = "ip-10-0-0-5";
    return c;
}

// The names an EMF directive declares, with the top-level value each must have.
std::vector<std::string> declared_metrics(const json& event) {
    std::vector<std::string> names;
    for (const auto& m : event["_aws"]["CloudWatchMetrics"][0]["Metrics"]) {
        names.push_back(m["Name"]);
    }
    return names;
}

}  // namespace

TEST_CASE("a check event has the JSON output's keys plus event, time, host and EMF", "[events]") {
    const auto r = sample_report();
    const auto event = check_event(r, sample_context());
    const auto output = report_to_json(r);

    SECTION("every key of --output json is there, with the same value") {
        for (const auto& [key, value] : output.items()) {
            INFO(key);
            REQUIRE(event.contains(key));
            CHECK(event[key] == value);
        }
    }
    SECTION("the added keys come first") {
        auto it = event.begin();
        CHECK(it.key() == "event");
        CHECK(it.value() == "check");
        ++it;
        CHECK(it.key() == "time");
        CHECK(it.value() == "2024-10-04T00:00:01.234Z");
        ++it;
        CHECK(it.key() == "host_name");
        CHECK(it.value() == "ip-10-0-0-5");
    }
    SECTION("the verdict is a metric under the instance's dimension") {
        CHECK(event["Verdict"] == 2);
        CHECK(event["InstanceId"] == "i-0abc");
        const auto& aws = event["_aws"];
        CHECK(aws["Timestamp"] == epoch_ms(checked_at));
        const auto& directive = aws["CloudWatchMetrics"][0];
        CHECK(directive["Namespace"] == "SSMDoctor");
        CHECK(directive["Dimensions"] == json::parse(R"([["InstanceId"]])"));
        CHECK(directive["Metrics"] == json::parse(R"([{"Name":"Verdict","Unit":"None"}])"));
    }
    SECTION("the report's instance id and region win over the context's") {
        CHECK(event["instance_id"] == "i-0abc");
        CHECK(event["region"] == "eu-west-1");
    }
}

TEST_CASE("a check event without IMDS takes the instance from the context or the host",
          "[events]") {
    auto r = sample_report();
    r.seen.imds.instance_id.reset();
    r.seen.region.reset();
    auto context = sample_context();
    context.metric_namespace = "Fleet/Doctor";

    SECTION("the context knows the instance") {
        const auto event = check_event(r, context);
        CHECK(event["instance_id"] == "i-fromcontext");
        CHECK(event["region"] == "us-east-2");
        CHECK(event["InstanceId"] == "i-fromcontext");
        CHECK(event["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Fleet/Doctor");
    }
    SECTION("nobody knows it: the dimension is the host name") {
        context.instance_id.clear();
        context.region.clear();
        const auto event = check_event(r, context);
        CHECK(event["instance_id"].is_null());
        CHECK(event["region"].is_null());
        CHECK_FALSE(event.contains("InstanceId"));
        CHECK(event["Host"] == "ip-10-0-0-5");
        CHECK(event["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json::parse(R"([["Host"]])"));
    }
}

TEST_CASE("endpoint events carry one set of metrics per probed endpoint", "[events]") {
    const auto events = endpoint_metric_events(sample_report(), sample_context());
    REQUIRE(events.size() == 3);  // kms was not probed

    SECTION("a reachable endpoint with a session has every metric") {
        const auto& e = events[0];
        CHECK(e["event"] == "endpoint");
        CHECK(e["service"] == "ssmmessages");
        CHECK(e["required"] == "required");
        CHECK(e["instance_id"] == "i-0abc");
        CHECK(e["address"] == "10.0.2.20");
        CHECK(e["address_kind"] == "private");
        CHECK(e["endpoint_addresses"] == "10.0.1.10,10.0.2.20");
        CHECK(e["sessions"] == 1);
        CHECK(e["InstanceId"] == "i-0abc");
        CHECK(e["Service"] == "ssmmessages");
        CHECK(e["Reachable"] == 1);
        CHECK(e["ConnectMs"] == 2);
        CHECK(e["TlsMs"] == 9);
        CHECK(e["SessionHeld"] == 1);
        CHECK(e["CertificateDaysToExpiry"] == 12);  // the earliest, not the representative's 30
        const auto& directive = e["_aws"]["CloudWatchMetrics"][0];
        CHECK(directive["Dimensions"] == json::parse(R"([["InstanceId","Service"]])"));
        CHECK(declared_metrics(e) == std::vector<std::string>{"Reachable", "ConnectMs", "TlsMs",
                                                              "SessionHeld",
                                                              "CertificateDaysToExpiry"});
        CHECK(directive["Metrics"][1]["Unit"] == "Milliseconds");
    }
    SECTION("no session held, with every socket attributed, is a 0") {
        CHECK(events[1]["service"] == "ec2messages");
        CHECK(events[1]["SessionHeld"] == 0);
    }
    SECTION("an unreachable endpoint declares only the metrics it has") {
        const auto& e = events[2];
        CHECK(e["service"] == "ssm");
        CHECK(e["Reachable"] == 0);
        CHECK_FALSE(e.contains("ConnectMs"));
        CHECK_FALSE(e.contains("CertificateDaysToExpiry"));
        CHECK(declared_metrics(e) == std::vector<std::string>{"Reachable", "SessionHeld"});
    }
    SECTION("every declared metric has a top-level numeric value") {
        for (const auto& e : events) {
            for (const auto& name : declared_metrics(e)) {
                INFO(name);
                CHECK(e[name].is_number());
            }
        }
    }
}

TEST_CASE("SessionHeld is left out when a missing session is no evidence", "[events]") {
    auto r = sample_report();
    SECTION("attribution incomplete") {
        r.seen.sockets.attribution_complete = false;
    }
    SECTION("the socket table was not read") {
        r.seen.sockets.table_read = false;
    }
    SECTION("the agent reaches the endpoint through its proxy") {
        r.seen.endpoints[1].via_proxy = true;
    }
    const auto events = endpoint_metric_events(r, sample_context());
    CHECK_FALSE(events[1].contains("SessionHeld"));
    CHECK(events[0]["SessionHeld"] == 1);  // a held session is evidence anyway
}

TEST_CASE("session events name the change, the endpoint and the process", "[events]") {
    session_change change;
    change.opened = false;
    change.service = "ec2messages";
    change.host = "ec2messages.eu-west-1.amazonaws.com";
    change.pid = 840;
    change.process = "ssm-agent-worker";
    change.local = "10.0.0.5:40000";
    change.remote = "10.0.1.30:443";
    change.at = checked_at;
    auto event = session_event(change, sample_context());
    CHECK(event["event"] == "session_closed");
    CHECK(event["time"] == "2024-10-04T00:00:01.234Z");
    CHECK(event["instance_id"] == "i-fromcontext");
    CHECK(event["region"] == "us-east-2");
    CHECK(event["service"] == "ec2messages");
    CHECK(event["pid"] == 840);
    CHECK(event["remote"] == "10.0.1.30:443");
    CHECK_FALSE(event.contains("_aws"));

    change.opened = true;
    change.service.clear();
    change.host.clear();
    event = session_event(change, event_context{});
    CHECK(event["event"] == "session_opened");
    CHECK(event["service"].is_null());
    CHECK(event["instance_id"].is_null());
}

TEST_CASE("a spool_dropped event counts the dropped events as a metric", "[events]") {
    const auto event = spool_dropped_event(17, checked_at, sample_context());
    CHECK(event["event"] == "spool_dropped");
    CHECK(event["dropped"] == 17);
    CHECK(event["SpoolDroppedEvents"] == 17);
    CHECK(declared_metrics(event) == std::vector<std::string>{"SpoolDroppedEvents"});
    CHECK(event["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Count");
}

TEST_CASE("event times have milliseconds and EMF timestamps are epoch milliseconds", "[events]") {
    CHECK(format_event_time(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
    CHECK(format_event_time(std::chrono::system_clock::time_point{} + 61'005ms) ==
          "1970-01-01T00:01:01.005Z");
    CHECK(epoch_ms(std::chrono::system_clock::time_point{} + 61'005ms) == 61'005);
}

TEST_CASE("an oversized event is truncated with a mark, never dropped", "[events]") {
    auto r = sample_report();

    SECTION("an event that fits is left as it is") {
        const auto event = check_event(r, sample_context());
        const auto line = fit_event(event);
        CHECK(line == event.dump());
        CHECK(line.find('\n') == std::string::npos);
    }
    SECTION("a huge note is cut; everything else stays") {
        r.seen.notes.push_back(std::string(400'000, 'x'));
        const auto line = fit_event(check_event(r, sample_context()));
        CHECK(line.size() <= max_event_bytes);
        const auto back = json::parse(line);
        CHECK(back["truncated"] == true);
        CHECK(back["original_bytes"].get<std::size_t>() > 400'000);
        CHECK(back["notes"][0].get<std::string>().ends_with("...[truncated]"));
        CHECK(back["endpoints"].size() == 4);
        CHECK(back["Verdict"] == 2);
        CHECK(back["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "Verdict");
    }
    SECTION("many findings: the skeleton keeps ids, metrics and names what it left out") {
        for (int i = 0; i < 3000; ++i) {
            r.findings.push_back({"finding_" + std::to_string(i), severity::info, std::nullopt,
                                  std::string(200, 'm'), std::string(100, 'r')});
        }
        const auto line = fit_event(check_event(r, sample_context()));
        CHECK(line.size() <= max_event_bytes);
        const auto back = json::parse(line);
        CHECK(back["truncated"] == true);
        CHECK(back["event"] == "check");
        CHECK(back["verdict"] == "critical");
        CHECK(back["instance_id"] == "i-0abc");
        CHECK(back["Verdict"] == 2);
        CHECK(back.contains("_aws"));
        CHECK(back["finding_ids"].size() == 3002);
        CHECK(back["finding_ids"][0] == "required_endpoint_unreachable");
        CHECK_FALSE(back.contains("findings"));
        const auto omitted = back["omitted"].get<std::vector<std::string>>();
        CHECK(std::find(omitted.begin(), omitted.end(), "endpoints") != omitted.end());
        CHECK(std::find(omitted.begin(), omitted.end(), "findings") != omitted.end());
    }
    SECTION("a small limit drops finding ids from the end and says how many") {
        const auto line = fit_event(check_event(r, sample_context()), 1500);
        CHECK(line.size() <= 1500);
        const auto back = json::parse(line);
        CHECK(back["truncated"] == true);
        CHECK(back["event"] == "check");
    }
    SECTION("the smallest limit still gives an identifying event") {
        json event{{"event", "session_opened"},
                   {"time", "2024-10-04T00:00:01.234Z"},
                   {"instance_id", "i-0abc"}};
        for (int i = 0; i < 40; ++i) {
            event["k" + std::to_string(i)] = std::string(200, 'v');
        }
        const auto line = fit_event(event, 10);  // raised to 1024
        CHECK(line.size() <= 1024);
        const auto back = json::parse(line);
        CHECK(back["event"] == "session_opened");
        CHECK(back["instance_id"] == "i-0abc");
        CHECK(back["truncated"] == true);
    }
    SECTION("invalid UTF-8 is replaced instead of throwing, and cuts keep sequences whole") {
        session_change change;
        change.process = std::string("worker\xff\xfe", 8) + std::string(300'000, '\xc3');
        for (std::size_t i = 8; i + 1 < change.process.size(); i += 2) {
            change.process[i + 1] = '\xa9';  // "é" repeated
        }
        const auto line = fit_event(session_event(change, sample_context()));
        CHECK(line.size() <= max_event_bytes);
        const auto back = json::parse(line);  // throws on invalid UTF-8
        CHECK(back["truncated"] == true);
    }
}
