// SPDX-License-Identifier: Apache-2.0
// Where events go: the event log file a CloudWatch agent collects and, when
// `cloudwatch.log_group` is set, the spool and CloudWatch Logs. Failures are logged, never fatal
// to a check.
#pragma once

#include <utility>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "agent/cloudwatch/shipper.hpp"
#include "agent/config.hpp"
#include "agent/event_log.hpp"
#include "agent/events.hpp"
#include "agent/watch.hpp"

namespace ssm_doctor {

// publish_* are called from one thread (the check's or the watch loop's): they write the event
// log at once and queue the event for the spool. flush() and spool_queued() may run on another
// thread, one at a time: only they touch the spool and the shipper.
class event_publisher {
public:
    event_publisher(const doctor_config& config, std::shared_ptr<boost::asio::ssl::context> tls);
    ~event_publisher();
    event_publisher(const event_publisher&) = delete;
    event_publisher& operator=(const event_publisher&) = delete;

    // The check's event and one metric event per endpoint. The first check also gives the
    // region and instance id that native shipping needs.
    void publish_check(const report& r);
    void publish_session(const session_change& change);

    // Queued events into the spool, then PutLogEvents until the spool is empty or `budget`
    // has passed. Without native shipping it only returns. Never throws.
    std::optional<flush_result> flush(std::chrono::milliseconds budget);

    // Queued events into the spool without sending: for a shutdown, so none is lost.
    void spool_queued();

private:
    void publish(const nlohmann::ordered_json& event, std::chrono::system_clock::time_point at);
    void write_log_line(const std::string& line);
    void start_shipping();

    doctor_config config_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    event_context context_;
    std::mutex log_mutex_;  // guards log_ and log_failing_
    std::optional<event_log_file> log_;
    bool log_failing_ = false;  // log the failure once, then again only after a success

    std::mutex queue_mutex_;  // guards queue_ and origin_
    std::vector<std::pair<std::int64_t, std::string>> queue_;
    // What the last check learned that shipping needs: the region and the instance id.
    std::optional<std::pair<std::optional<std::string>, std::string>> origin_;
    std::unique_ptr<shipper> shipper_;
    std::optional<std::string> shipping_error_;  // why shipping is not running, logged once
};

// The watch daemon's observer: publishes every check and session change, and ships on a thread
// of its own so that the watch loop never waits for the network. Each flush is short, so a
// stop waits for at most one of them.
class publishing_observer : public watch_observer {
public:
    publishing_observer(const doctor_config& config,
                        std::shared_ptr<boost::asio::ssl::context> tls);
    ~publishing_observer() override;  // ends the shipping thread and spools what is queued

    void on_check(const report& r) override;
    void on_session_change(const session_change& change) override;

private:
    void ship_loop();

    event_publisher publisher_;
    std::chrono::milliseconds flush_budget_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool work_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace ssm_doctor
