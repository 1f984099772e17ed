// SPDX-License-Identifier: Apache-2.0
// Log events with Embedded Metric Format metadata, and the fitting of an event into the size
// CloudWatch Logs accepts.
#include "agent/events.hpp"

#include <utility>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>

#include "agent/render.hpp"

namespace ssm_doctor {
namespace {

using json = nlohmann::ordered_json;

json text_or_null(const std::string& text) {
    return text.empty() ? json(nullptr) : json(text);
}

// The EMF dimension that names the instance: InstanceId when known; otherwise (no IMDS, a
// hybrid node) Host, so the metrics of such a node still form a series of their own.
std::pair<std::string, std::string> instance_dimension(const std::string& instance_id,
                                                       const event_context& context) {
    if (!instance_id.empty()) {
        return {"InstanceId", instance_id};
    }
    return {"Host", context.host_name.empty() ? std::string("unknown") : context.host_name};
}

struct metric {
    std::string name;
    std::string unit;
    json value;
};

// Adds the metric values as top-level members and the `_aws` directive declaring them. Only
// metrics with a value are declared: EMF rejects a declared metric without one.
void add_emf(json& event, std::chrono::system_clock::time_point at, const event_context& context,
             const std::vector<std::string>& dimension_keys, const std::vector<metric>& metrics) {
    json declared = json::array();
    for (const auto& m : metrics) {
        event[m.name] = m.value;
        declared.push_back({{"Name", m.name}, {"Unit", m.unit}});
    }
    if (declared.empty()) {
        return;
    }
    event["_aws"] = {
        {"Timestamp", epoch_ms(at)},
        {"CloudWatchMetrics", json::array({{{"Namespace", context.metric_namespace},
                                            {"Dimensions", json::array({dimension_keys})},
                                            {"Metrics", std::move(declared)}}})}};
}

// The address that speaks for the endpoint, as in the JSON output: the first that worked, else
// the first tried.
const address_observation* representative(const endpoint_observation& ep) {
    for (const auto& a : ep.addresses) {
        if (a.probe.ok) {
            return &a;
        }
    }
    return ep.addresses.empty() ? nullptr : &ep.addresses.front();
}

// The earliest notAfter among verified certificates, as the certificate_expiring finding reads
// it; an unverified certificate says nothing about the endpoint's own.
std::optional<std::int64_t> days_to_expiry(const endpoint_observation& ep,
                                           std::chrono::system_clock::time_point now) {
    std::optional<std::chrono::system_clock::time_point> earliest;
    for (const auto& a : ep.addresses) {
        if (a.probe.ok && a.probe.tls && a.probe.tls->not_after) {
            if (!earliest || *a.probe.tls->not_after < *earliest) {
                earliest = a.probe.tls->not_after;
            }
        }
    }
    if (!earliest) {
        return std::nullopt;
    }
    return std::chrono::floor<std::chrono::days>(*earliest - now).count();
}

// 1 when the agent holds a connection; 0 only when a missing connection is evidence (every
// socket attributed, the endpoint reached without the agent's proxy); else unknown.
std::optional<int> session_held(const endpoint_observation& ep, const observations& seen) {
    if (!ep.sessions.empty()) {
        return 1;
    }
    if (seen.sockets.table_read && seen.sockets.attribution_complete && !ep.via_proxy) {
        return 0;
    }
    return std::nullopt;
}

// The endpoint's addresses, sorted and joined: a key naming the same interface VPC endpoint
// on every instance, whatever order DNS returned its addresses in.
std::string address_set(const endpoint_observation& ep) {
    std::vector<std::string> ips;
    for (const auto& a : ep.addresses) {
        ips.push_back(a.ip.to_string());
    }
    std::sort(ips.begin(), ips.end());
    std::string joined;
    for (const auto& ip : ips) {
        joined += joined.empty() ? ip : "," + ip;
    }
    return joined;
}

std::string report_instance_id(const report& r, const event_context& context) {
    return r.seen.imds.instance_id ? *r.seen.imds.instance_id : context.instance_id;
}

std::string report_region(const report& r, const event_context& context) {
    return r.seen.region ? *r.seen.region : context.region;
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence, and marks the cut.
std::string cut(const std::string& text, std::size_t limit) {
    if (text.size() <= limit) {
        return text;
    }
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
        --end;
    }
    return text.substr(0, end) + "...[truncated]";
}

// Cuts every string below `j` except inside `_aws`, whose names EMF must find intact.
void cut_strings(json& j, std::size_t limit) {
    if (j.is_string()) {
        j = cut(j.get_ref<const std::string&>(), limit);
    } else if (j.is_array()) {
        for (auto& item : j) {
            cut_strings(item, limit);
        }
    } else if (j.is_object()) {
        for (auto& [key, value] : j.items()) {
            if (key != "_aws") {
                cut_strings(value, limit);
            }
        }
    }
}

void mark_truncated(json& j, std::size_t original) {
    j["truncated"] = true;
    j["original_bytes"] = original;
}

}  // namespace

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string format_event_time(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
    const auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
    const auto fraction = (ms - seconds).count();
    std::string text = format_utc(seconds);  // "...:14Z"
    char digits[8];
    std::snprintf(digits, sizeof digits, ".%03d", static_cast<int>(fraction));
    text.insert(text.size() - 1, digits);
    return text;
}

nlohmann::ordered_json check_event(const report& r, const event_context& context) {
    const std::string instance_id = report_instance_id(r, context);
    const std::string region = report_region(r, context);
    json event{{"event", "check"},
               {"time", format_event_time(r.checked_at)},
               {"host_name", context.host_name}};
    json body = report_to_json(r);
    for (auto& [key, value] : body.items()) {
        event[key] = std::move(value);
    }
    // The check may have run without IMDS while the daemon knows both from an earlier check.
    event["instance_id"] = text_or_null(instance_id);
    event["region"] = text_or_null(region);

    const auto [dimension, dimension_value] = instance_dimension(instance_id, context);
    event[dimension] = dimension_value;
    add_emf(event, r.checked_at, context, {dimension},
            {{"Verdict", "None", static_cast<int>(r.overall)}});
    return event;
}

std::vector<nlohmann::ordered_json> endpoint_metric_events(const report& r,
                                                           const event_context& context) {
    const std::string instance_id = report_instance_id(r, context);
    const auto [dimension, dimension_value] = instance_dimension(instance_id, context);
    std::vector<json> events;
    for (std::size_t i = 0; i < r.seen.endpoints.size(); ++i) {
        const auto& ep = r.seen.endpoints[i];
        if (!ep.probed) {
            continue;  // no host: nothing was measured
        }
        const auto req = i < r.requirements.size() ? r.requirements[i] : requirement::optional;
        const auto* best = representative(ep);
        const std::string svc{to_string(ep.target.svc)};
        json event{{"event", "endpoint"},
                   {"time", format_event_time(r.checked_at)},
                   {"instance_id", text_or_null(instance_id)},
                   {"region", text_or_null(report_region(r, context))},
                   {"host_name", context.host_name},
                   {"verdict", to_string(r.overall)},
                   {"service", svc},
                   {"host", ep.target.host},
                   {"required", to_string(req)},
                   {"via_proxy", ep.via_proxy},
                   {"address", best ? json(best->ip.to_string()) : json(nullptr)},
                   {"address_kind", best ? json(to_string(best->kind)) : json(nullptr)},
                   {"endpoint_addresses", address_set(ep)},
                   {"sessions", ep.sessions.size()},
                   {dimension, dimension_value},
                   {"Service", svc}};

        std::vector<metric> metrics{{"Reachable", "Count", ep.reachable() ? 1 : 0}};
        if (best && best->probe.connect_ms) {
            metrics.push_back({"ConnectMs", "Milliseconds", best->probe.connect_ms->count()});
        }
        if (best && best->probe.tls_ms) {
            metrics.push_back({"TlsMs", "Milliseconds", best->probe.tls_ms->count()});
        }
        if (const auto held = session_held(ep, r.seen)) {
            metrics.push_back({"SessionHeld", "Count", *held});
        }
        if (const auto days = days_to_expiry(ep, r.checked_at)) {
            metrics.push_back({"CertificateDaysToExpiry", "None", *days});
        }
        add_emf(event, r.checked_at, context, {dimension, "Service"}, metrics);
        events.push_back(std::move(event));
    }
    return events;
}

nlohmann::ordered_json session_event(const session_change& change, const event_context& context) {
    return {{"event", change.opened ? "session_opened" : "session_closed"},
            {"time", format_event_time(change.at)},
            {"instance_id", text_or_null(context.instance_id)},
            {"region", text_or_null(context.region)},
            {"host_name", context.host_name},
            {"service", text_or_null(change.service)},
            {"host", text_or_null(change.host)},
            {"pid", change.pid},
            {"process", change.process},
            {"local", change.local},
            {"remote", change.remote}};
}

nlohmann::ordered_json spool_dropped_event(std::uint64_t dropped,
                                           std::chrono::system_clock::time_point at,
                                           const event_context& context) {
    json event{{"event", "spool_dropped"},
               {"time", format_event_time(at)},
               {"instance_id", text_or_null(context.instance_id)},
               {"region", text_or_null(context.region)},
               {"host_name", context.host_name},
               {"dropped", dropped}};
    const auto [dimension, dimension_value] = instance_dimension(context.instance_id, context);
    event[dimension] = dimension_value;
    add_emf(event, at, context, {dimension}, {{"SpoolDroppedEvents", "Count", dropped}});
    return event;
}

std::string fit_event(const nlohmann::ordered_json& event, std::size_t max_bytes) {
    max_bytes = std::max<std::size_t>(max_bytes, 1024);
    std::string line = dump(event);
    if (line.size() <= max_bytes) {
        return line;
    }
    const std::size_t original = line.size();

    // 1. Long strings (a huge note, a peer's certificate subject) are the usual cause.
    for (const std::size_t limit : {4096u, 1024u, 256u}) {
        json shorter = event;
        cut_strings(shorter, limit);
        mark_truncated(shorter, original);
        line = dump(shorter);
        if (line.size() <= max_bytes) {
            return line;
        }
    }

    // 2. Keep the scalar members (event, time, verdict, ids, metric values), `_aws`, and the
    // findings' ids; name the members left out.
    json skeleton = json::object();
    json omitted = json::array();
    json finding_ids = json::array();
    if (event.is_object()) {
        for (const auto& [key, value] : event.items()) {
            if (key == "_aws" || value.is_primitive()) {
                skeleton[key] = value;
            } else if (key == "findings" && value.is_array()) {
                for (const auto& f : value) {
                    if (f.is_object() && f.contains("id")) {
                        finding_ids.push_back(f["id"]);
                    }
                }
                omitted.push_back(key);
            } else {
                omitted.push_back(key);
            }
        }
    }
    cut_strings(skeleton, 256);
    cut_strings(finding_ids, 64);
    skeleton["finding_ids"] = finding_ids;
    skeleton["omitted"] = std::move(omitted);
    mark_truncated(skeleton, original);
    std::size_t left_out = 0;
    while (true) {
        line = dump(skeleton);
        if (line.size() <= max_bytes || skeleton["finding_ids"].empty()) {
            break;
        }
        skeleton["finding_ids"].erase(skeleton["finding_ids"].size() - 1);
        skeleton["finding_ids_omitted"] = ++left_out;
    }
    if (line.size() <= max_bytes) {
        return line;
    }

    // 3. Only what identifies the event; always fits in 1024 bytes.
    json minimal = json::object();
    for (const char* key : {"event", "time", "instance_id", "host_name"}) {
        if (event.is_object() && event.contains(key) && event[key].is_primitive()) {
            minimal[key] = event[key];
        }
    }
    cut_strings(minimal, 64);
    mark_truncated(minimal, original);
    return dump(minimal);
}

}  // namespace ssm_doctor
