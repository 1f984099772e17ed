// SPDX-License-Identifier: Apache-2.0
// The stderr logger and the events a check writes to it.
#include "agent/logging.hpp"

#include <cstdlib>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ssm_doctor {
namespace {

// "<3>" and friends: the sd-daemon prefix journald reads from a service's stderr.
class journal_priority_flag : public spdlog::custom_flag_formatter {
public:
    explicit journal_priority_flag(bool enabled) : enabled_(enabled) {}

    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (!enabled_) {
            return;
        }
        const char* prefix = "<6>";
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug:
                prefix = "<7>";
                break;
            case spdlog::level::info:
                prefix = "<6>";
                break;
            case spdlog::level::warn:
                prefix = "<4>";
                break;
            case spdlog::level::err:
                prefix = "<3>";
                break;
            case spdlog::level::critical:
                prefix = "<2>";
                break;
            default:
                break;
        }
        dest.append(prefix, prefix + 3);
    }

    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<journal_priority_flag>(enabled_);
    }

private:
    bool enabled_;
};

std::string optional_text(const std::optional<std::chrono::milliseconds>& ms) {
    return ms ? std::to_string(ms->count()) : "-";
}

}  // namespace

void setup_logging(std::string_view level) {
    auto logger = std::make_shared<spdlog::logger>(
        "ssm-doctor", std::make_shared<spdlog::sinks::stderr_sink_st>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<journal_priority_flag>('*', std::getenv("JOURNAL_STREAM") != nullptr);
    formatter->set_pattern("%*level=%l %v");
    logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::from_str(std::string(level)));
    spdlog::set_default_logger(std::move(logger));
}

void log_report(const report& r) {
    const auto& seen = r.seen;
    for (std::size_t i = 0; i < seen.endpoints.size(); ++i) {
        const auto& ep = seen.endpoints[i];
        for (const auto& a : ep.addresses) {
            spdlog::debug("{} {} {} {} {} {} {} {}", kv("event", "probe"),
                          kv("service", to_string(ep.target.svc)), kv("host", ep.target.host),
                          kv("address", a.ip.to_string()),
                          kv("outcome", a.probe.ok        ? "ok"
                                        : a.probe.failure ? to_string(a.probe.failure->reason)
                                                          : "failed"),
                          kv("connect_ms", optional_text(a.probe.connect_ms)),
                          kv("tls_ms", optional_text(a.probe.tls_ms)),
                          kv("sessions", std::to_string(ep.sessions.size())));
        }
        if (ep.dns.failure) {
            spdlog::debug("{} {} {} {} {}", kv("event", "probe"),
                          kv("service", to_string(ep.target.svc)), kv("host", ep.target.host),
                          kv("phase", "dns"), kv("outcome", to_string(ep.dns.failure->reason)));
        }
    }
    for (const auto& f : r.findings) {
        const auto level = f.level == severity::info ? spdlog::level::info : spdlog::level::warn;
        spdlog::log(level, "{} {} {} {} {} {}", kv("event", "finding"), kv("id", f.id),
                    kv("severity", to_string(f.level)),
                    kv("service", f.svc ? to_string(*f.svc) : "-"), kv("message", f.message),
                    kv("remedy", f.remedy));
    }
    spdlog::info("{} {} {} {} {}", kv("event", "verdict"), kv("verdict", to_string(r.overall)),
                 kv("region", seen.region.value_or("-")),
                 kv("findings", std::to_string(r.findings.size())),
                 kv("elapsed_ms", std::to_string(seen.elapsed.count())));
}

}  // namespace ssm_doctor
