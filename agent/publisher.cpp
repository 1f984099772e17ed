// SPDX-License-Identifier: Apache-2.0
// The event log file, the spool and the shipper behind one object used by check and watch.
#include "agent/publisher.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "agent/logging.hpp"

namespace ssm_doctor {
namespace {

// No event may be lost for want of memory, yet a daemon must not grow without bound while
// the spool is unavailable: past this many queued events the oldest go, counted.
constexpr std::size_t max_queued_events = 10'000;

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) {
        return "";
    }
    return name;
}

}  // namespace

event_publisher::event_publisher(const doctor_config& config,
                                 std::shared_ptr<boost::asio::ssl::context> tls)
    : config_(config), tls_(std::move(tls)) {
    context_.host_name = host_name();
    context_.metric_namespace = config.cloudwatch.metric_namespace;
}

event_publisher::~event_publisher() = default;

void event_publisher::write_log_line(const std::string& line) {
    if (!config_.events.enabled) {
        return;
    }
    std::lock_guard lock(log_mutex_);
    try {
        // Opened on first use, and again after a failure: the directory may appear later.
        if (!log_) {
            log_.emplace(config_.events);
        }
        log_->append(line);
        if (log_failing_) {
            spdlog::info("{} {}", kv("event", "event_log_resumed"),
                         kv("path", config_.events.file.string()));
            log_failing_ = false;
        }
    } catch (const event_log_error& e) {
        if (!log_failing_) {
            spdlog::warn("{} {}", kv("event", "event_log_failed"), kv("error", e.what()));
            log_failing_ = true;
        }
    }
}

void event_publisher::publish(const nlohmann::ordered_json& event,
                              std::chrono::system_clock::time_point at) {
    std::string line = fit_event(event);
    write_log_line(line);
    if (!config_.cloudwatch.log_group) {
        return;
    }
    std::lock_guard lock(queue_mutex_);
    if (queue_.size() >= max_queued_events) {
        queue_.erase(queue_.begin());
        spdlog::warn("{} {}", kv("event", "queue_dropped"), kv("count", "1"));
    }
    queue_.emplace_back(epoch_ms(at), std::move(line));
}

void event_publisher::start_shipping() {
    if (shipper_ || !config_.cloudwatch.log_group) {
        return;
    }
    std::optional<std::pair<std::optional<std::string>, std::string>> origin;
    {
        std::lock_guard lock(queue_mutex_);
        origin = origin_;
    }
    if (!origin) {
        return;  // no check yet: the region and instance id are unknown
    }
    std::string error;
    auto settings = shipper_settings_from_config(config_, origin->first, origin->second, &error);
    if (!settings) {
        if (shipping_error_ != error) {
            spdlog::warn("{} {}", kv("event", "ship_disabled"), kv("reason", error));
            shipping_error_ = error;
        }
        return;
    }
    try {
        shipper_ = std::make_unique<shipper>(std::move(*settings), tls_);
        shipping_error_.reset();
    } catch (const std::exception& e) {
        if (shipping_error_ != e.what()) {
            spdlog::warn("{} {}", kv("event", "ship_disabled"), kv("reason", e.what()));
            shipping_error_ = e.what();
        }
    }
}

void event_publisher::publish_check(const report& r) {
    context_.instance_id = r.seen.imds.instance_id.value_or("");
    context_.region = r.seen.region.value_or("");
    {
        std::lock_guard lock(queue_mutex_);
        origin_.emplace(r.seen.region, context_.instance_id);
    }
    publish(check_event(r, context_), r.checked_at);
    for (const auto& event : endpoint_metric_events(r, context_)) {
        publish(event, r.checked_at);
    }
}

void event_publisher::publish_session(const session_change& change) {
    publish(session_event(change, context_), change.at);
}

void event_publisher::spool_queued() {
    start_shipping();
    if (!shipper_) {
        return;
    }
    std::vector<std::pair<std::int64_t, std::string>> queued;
    {
        std::lock_guard lock(queue_mutex_);
        queued.swap(queue_);
    }
    for (auto& [timestamp, message] : queued) {
        shipper_->publish(timestamp, message);
    }
}

std::optional<flush_result> event_publisher::flush(std::chrono::milliseconds budget) {
    spool_queued();
    if (!shipper_) {
        return std::nullopt;
    }
    boost::asio::io_context io;
    std::optional<flush_result> result;
    boost::asio::co_spawn(
        io, shipper_->flush(io.get_executor(), std::chrono::steady_clock::now() + budget),
        [&](std::exception_ptr error, flush_result r) {
            if (!error) {
                result = std::move(r);
            }
        });
    io.run();
    if (result && result->spool_dropped > 0) {
        // Counted as a metric too; it travels with the next flush.
        publish(
            spool_dropped_event(result->spool_dropped, std::chrono::system_clock::now(), context_),
            std::chrono::system_clock::now());
    }
    return result;
}

publishing_observer::publishing_observer(const doctor_config& config,
                                         std::shared_ptr<boost::asio::ssl::context> tls)
    : publisher_(config, std::move(tls)),
      // Short rounds: a stop (SIGTERM) waits for at most one, within its one-second promise.
      flush_budget_(std::min(config.cloudwatch.flush_timeout, std::chrono::milliseconds(400))) {
    if (config.cloudwatch.log_group) {
        thread_ = std::thread([this] { ship_loop(); });
    }
}

publishing_observer::~publishing_observer() {
    if (thread_.joinable()) {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }
    publisher_.spool_queued();
}

void publishing_observer::on_check(const report& r) {
    publisher_.publish_check(r);
    {
        std::lock_guard lock(mutex_);
        work_ = true;
    }
    wake_.notify_one();
}

void publishing_observer::on_session_change(const session_change& change) {
    publisher_.publish_session(change);
    {
        std::lock_guard lock(mutex_);
        work_ = true;
    }
    wake_.notify_one();
}

// Flushes after each publication, and once a minute so that events left by an outage go out
// when the service is back; rounds repeat while a round made progress.
void publishing_observer::ship_loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, std::chrono::minutes(1), [this] { return work_ || stopping_; });
        if (stopping_) {
            break;
        }
        work_ = false;
        lock.unlock();
        const auto result = publisher_.flush(flush_budget_);
        lock.lock();
        if (result && !result->drained && result->sent > 0) {
            work_ = true;  // more to send and the service takes it: go on at once
        }
    }
}

}  // namespace ssm_doctor
