// SPDX-License-Identifier: Apache-2.0
// Native shipping: events go to the on-disk spool first, then to CloudWatch Logs in batches
// within the API's limits, with retries, and leave the spool only once the service took them.
#pragma once

// Delivery is at least once: a batch is acknowledged in the spool only after a 2xx, so a crash
// between the answer and the acknowledgement sends that batch again on the next run. Events the
// service refuses (too old, too new, malformed) are dropped, counted and logged, never retried
// forever. Events dropped because the spool reached its bound are counted and logged at warn,
// one line per flush.
// Log lines (docs/logging.md): event=ship_ok, ship_retry, ship_failed, ship_rejected,
// ship_truncated, ship_created, spool_dropped, spool_note. None carries a credential.

#include <utility>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "agent/cloudwatch/credentials.hpp"
#include "agent/cloudwatch/logs_client.hpp"
#include "agent/cloudwatch/spool.hpp"
#include "agent/config.hpp"
#include "probes/deadline.hpp"

namespace ssm_doctor {

// PutLogEvents' limits (CloudWatch Logs quotas, fixed by the service).
struct batch_limits {
    std::size_t max_batch_bytes = 1'048'576;  // sum of message bytes + overhead per event
    std::size_t event_overhead = 26;
    std::size_t max_events = 10'000;
    std::chrono::milliseconds max_span = std::chrono::hours(24);  // last - first, exclusive
    std::size_t max_event_bytes = 262'144 - 26;                   // one message's bytes
};

// Pure: `text` made valid UTF-8 (each invalid byte becomes U+FFFD) and at most `max_bytes`
// long, cut at a character boundary and ended with a mark saying how many bytes were cut.
// `truncated` (when given) tells whether it was cut.
std::string fit_log_message(std::string_view text, std::size_t max_bytes,
                            bool* truncated = nullptr);

struct log_batch {
    std::vector<log_event> events;    // in ascending time order (stable for equal times)
    std::uint64_t last_sequence = 0;  // acknowledge up to here once the service took the batch
    std::size_t taken = 0;            // spooled events consumed (== events.size())
    std::size_t bytes = 0;            // as the service counts them
    std::size_t truncated = 0;        // messages cut to fit
};

// Pure: the longest prefix of `pending` (the spool's order, oldest first) that fits the limits
// and `max_events`, then sorted by time. A prefix, so that acknowledging by sequence never skips
// an event. Out-of-order events are sorted into the batch; one that would stretch its span past
// max_span starts the next batch. Never empty when `pending` is not.
log_batch make_batch(const std::vector<spooled_event>& pending, std::size_t max_events,
                     const batch_limits& limits = {});

struct shipper_settings {
    std::string log_group;
    std::string log_stream;  // the instance id unless configured
    std::string region;      // the signing region
    logs_endpoint endpoint;
    std::filesystem::path spool_dir;
    std::uint64_t spool_max_bytes = 64u << 20;
    std::string imds_endpoint = "http://169.254.169.254";
    std::chrono::milliseconds imds_timeout{1000};
    std::chrono::seconds credentials_refresh_margin = std::chrono::minutes(5);
    std::chrono::milliseconds request_timeout{10'000};  // one HTTPS call, within the deadline
    std::chrono::milliseconds backoff_base{200};        // first retry waits up to this
    std::chrono::milliseconds backoff_cap{20'000};
    int max_attempts = 8;  // per batch and flush; then the flush ends and the batch waits
    std::optional<std::uint64_t> jitter_seed;  // tests: reproducible delays
    batch_limits limits;
};

// Settings from the configuration, or nullopt with `error` set (no region and no endpoint, no
// log stream and no instance id). `region` and `instance_id` are what the check learned.
std::optional<shipper_settings> shipper_settings_from_config(
    const doctor_config& config, const std::optional<std::string>& region,
    const std::string& instance_id, std::string* error = nullptr);

struct flush_result {
    bool drained = false;      // the spool was empty when the flush ended
    std::size_t sent = 0;      // events the service took
    std::size_t rejected = 0;  // events the service refused (dropped, counted)
    std::size_t truncated = 0;
    std::size_t retries = 0;
    std::uint64_t spool_dropped = 0;   // events the spool's bound dropped since the last flush
    std::size_t remaining = 0;         // still spooled
    std::optional<std::string> error;  // why the flush stopped before the spool was empty
};

// Totals since the shipper was made, for metrics and the benchmark.
struct ship_totals {
    std::uint64_t sent = 0;
    std::uint64_t rejected = 0;
    std::uint64_t truncated = 0;
    std::uint64_t retries = 0;
    std::uint64_t requests = 0;
    std::uint64_t spool_dropped = 0;
};

// One owner, one thread: flush() must not run twice at once.
class shipper {
public:
    // Opens (or resumes) the spool; throws std::runtime_error naming the spool directory when it
    // cannot be used.
    shipper(shipper_settings settings, std::shared_ptr<boost::asio::ssl::context> tls);
    ~shipper();
    shipper(const shipper&) = delete;
    shipper& operator=(const shipper&) = delete;

    // Durable in the spool when it returns true; false (logged at error) when the disk refused.
    bool publish(std::int64_t timestamp_ms, const std::string& message);

    // Sends spooled events until the spool is empty or `deadline`; never throws.
    boost::asio::awaitable<flush_result> flush(boost::asio::any_io_executor executor,
                                               steady_time deadline);

    std::size_t pending() const;
    const ship_totals& totals() const { return totals_; }
    const shipper_settings& settings() const { return settings_; }

private:
    enum class step { sent, retry, stop };
    boost::asio::awaitable<bool> ensure_destination(boost::asio::any_io_executor executor,
                                                    const aws_credentials& credentials,
                                                    steady_time deadline, logs_response& failure);
    std::chrono::milliseconds backoff(int attempt);
    void report_spool();  // logs the spool's notes, counts new drops (logged once per flush)

    shipper_settings settings_;
    event_spool spool_;
    imds_credentials_provider credentials_;
    logs_client client_;
    std::mt19937_64 random_;
    ship_totals totals_;
    std::uint64_t spool_dropped_seen_ = 0;
    std::uint64_t dropped_since_flush_ = 0;
};

// The one-shot path: publishes the event, then flushes until now + `flush_timeout`. What is not
// delivered by then stays in the spool for the next run.
boost::asio::awaitable<flush_result> publish_and_flush(boost::asio::any_io_executor executor,
                                                       shipper& target, std::int64_t timestamp_ms,
                                                       std::string message,
                                                       std::chrono::milliseconds flush_timeout);

}  // namespace ssm_doctor
