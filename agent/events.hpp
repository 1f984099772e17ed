// SPDX-License-Identifier: Apache-2.0
// Log events for CloudWatch: one JSON object per check (with Embedded Metric Format metadata)
// and one per agent session that opens or closes. Pure renderers: no I/O, no clock.
//
// The keys and metrics are an interface, listed in docs/cloudwatch.md. EMF allows one value per
// metric name in an event, so the per-endpoint metrics (dimension Service) travel in one small
// event per endpoint (endpoint_metric_events) beside the check event, which carries Verdict.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/verdict.hpp"

namespace ssm_doctor {

struct event_context {
    std::string instance_id;  // "" when unknown
    std::string region;       // "" when unknown
    std::string host_name;
    std::string metric_namespace = "SSMDoctor";
};

// An agent session seen to appear or end between two socket-table samples (watch daemon).
struct session_change {
    bool opened = true;   // false: closed
    std::string service;  // "ssmmessages", or "" when the remote matches no endpoint
    std::string host;     // the endpoint's host name, "" when unknown
    int pid = 0;
    std::string process;
    std::string local;   // "10.0.0.5:40000"
    std::string remote;  // "10.0.1.12:443"
    std::chrono::system_clock::time_point at;
};

// The largest event CloudWatch Logs accepts: 256 KiB minus the 26 bytes it adds per event.
inline constexpr std::size_t max_event_bytes = 262'144 - 26;

// The same keys as `--output json`, plus `event`, `instance_id`, `host_name`, `time`, and the
// EMF `_aws` block with the metrics of docs/cloudwatch.md.
nlohmann::ordered_json check_event(const report& r, const event_context& context);

nlohmann::ordered_json session_event(const session_change& change, const event_context& context);

// One event per probed endpoint (`event: "endpoint"`), each with the EMF metrics Reachable,
// ConnectMs, TlsMs, SessionHeld and CertificateDaysToExpiry under the dimensions
// [InstanceId, Service]. A metric whose value is unknown is left out of that event's directive.
std::vector<nlohmann::ordered_json> endpoint_metric_events(const report& r,
                                                           const event_context& context);

// `event: "spool_dropped"`: `dropped` events were removed from the spool for its size bound
// since the last such event; EMF metric SpoolDroppedEvents (Count) under [InstanceId].
nlohmann::ordered_json spool_dropped_event(std::uint64_t dropped,
                                           std::chrono::system_clock::time_point at,
                                           const event_context& context);

// Milliseconds since the epoch, the time unit of EMF and PutLogEvents.
std::int64_t epoch_ms(std::chrono::system_clock::time_point t);

// "2026-12-03T16:44:14.123Z": the `time` key of every event.
std::string format_event_time(std::chrono::system_clock::time_point t);

// The event as one line of JSON (no newline) of at most `max_bytes` UTF-8 bytes. Invalid UTF-8
// in strings is replaced, never thrown. A larger event is shrunk, never dropped: long strings
// are cut first; if that is not enough, only the identifying keys, the findings' ids and the
// EMF metrics stay. A shrunk event has `"truncated": true` and `"original_bytes"`.
// `max_bytes` below 1024 is raised to 1024.
std::string fit_event(const nlohmann::ordered_json& event, std::size_t max_bytes = max_event_bytes);

}  // namespace ssm_doctor
