// SPDX-License-Identifier: Apache-2.0
// The shipping policy: batches from the spool, retries with backoff and full jitter, creation of
// the log group and stream when missing, and acknowledgement only after the service took a batch.
#include "agent/cloudwatch/shipper.hpp"

#include <utility>

#include <algorithm>
#include <limits>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/log_fields.hpp"
#include "agent/targets.hpp"

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
using steady_clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What peek() is asked for at most per batch; the batch limits cut it further.
constexpr std::size_t peek_bytes = 2u << 20;

// `key=value` as agent/logging.hpp's kv() writes it (this library sits below that one).
// The length of the UTF-8 sequence starting at text[i], or 0 when it is not a valid one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    std::uint32_t min = 0;
    std::uint32_t code = 0;
    if (lead < 0x80) {
        return 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, min = 0x80, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, min = 0x800, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, min = 0x10000, code = lead & 0x07;
    } else {
        return 0;
    }
    if (i + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) {
            return 0;
        }
        code = (code << 6) | (byte(i + k) & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8.
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
        return 0;
    }
    return length;
}

}  // namespace

std::string fit_log_message(std::string_view text, std::size_t max_bytes, bool* truncated) {
    static constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
    std::string clean;
    clean.reserve(std::min(text.size(), max_bytes + 64));
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_sequence(text, i);
        if (n == 0) {
            clean += replacement;
            i += 1;
        } else {
            clean.append(text.substr(i, n));
            i += n;
        }
        if (clean.size() > max_bytes + 4) {
            // Enough to know it will be cut; the rest is only counted.
            clean.append(text.substr(i));
            break;
        }
    }
    if (truncated != nullptr) {
        *truncated = clean.size() > max_bytes;
    }
    if (clean.size() <= max_bytes) {
        return clean;
    }
    // Cut at a character boundary so that the text plus the mark fits.
    const std::size_t original = clean.size();
    std::string mark = " [truncated by ssm-doctor: " + std::to_string(original) + " bytes]";
    std::size_t keep = max_bytes > mark.size() ? max_bytes - mark.size() : 0;
    while (keep > 0 && (static_cast<unsigned char>(clean[keep]) & 0xC0) == 0x80) {
        --keep;
    }
    clean.resize(keep);
    if (mark.size() > max_bytes) {
        mark.resize(max_bytes);  // absurdly small limits: keep whatever of the mark fits
    }
    return clean + mark;
}

log_batch make_batch(const std::vector<spooled_event>& pending, std::size_t max_events,
                     const batch_limits& limits) {
    log_batch batch;
    const std::size_t event_cap = std::max<std::size_t>(1, std::min(max_events, limits.max_events));
    std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
    std::int64_t latest = std::numeric_limits<std::int64_t>::min();
    for (const auto& spooled : pending) {
        if (batch.events.size() >= event_cap) {
            break;
        }
        bool cut = false;
        std::string message = fit_log_message(spooled.message, limits.max_event_bytes, &cut);
        const std::size_t cost = message.size() + limits.event_overhead;
        const std::int64_t low = std::min(earliest, spooled.timestamp_ms);
        const std::int64_t high = std::max(latest, spooled.timestamp_ms);
        if (!batch.events.empty() && (batch.bytes + cost > limits.max_batch_bytes ||
                                      high - low >= limits.max_span.count())) {
            break;
        }
        earliest = low;
        latest = high;
        batch.bytes += cost;
        batch.truncated += cut ? 1 : 0;
        batch.last_sequence = spooled.sequence;
        batch.events.push_back(log_event{spooled.timestamp_ms, std::move(message)});
    }
    batch.taken = batch.events.size();
    std::stable_sort(
        batch.events.begin(), batch.events.end(),
        [](const log_event& a, const log_event& b) { return a.timestamp_ms < b.timestamp_ms; });
    return batch;
}

std::optional<shipper_settings> shipper_settings_from_config(
    const doctor_config& config, const std::optional<std::string>& region,
    const std::string& instance_id, std::string* error) {
    auto fail = [error](std::string why) -> std::optional<shipper_settings> {
        if (error != nullptr) {
            *error = std::move(why);
        }
        return std::nullopt;
    };
    const auto& cw = config.cloudwatch;
    if (!cw.log_group || cw.log_group->empty()) {
        return fail("cloudwatch.log_group is not set: native shipping is off");
    }
    shipper_settings s;
    s.log_group = *cw.log_group;
    s.log_stream = cw.log_stream.value_or(instance_id);
    if (s.log_stream.empty()) {
        return fail(
            "no log stream: cloudwatch.log_stream is not set and the instance id is "
            "unknown");
    }
    const auto signing_region = region ? region : config.region;
    if (!signing_region || !valid_region(*signing_region)) {
        return fail("no valid region to sign CloudWatch Logs requests with; set `region`");
    }
    s.region = *signing_region;
    std::string why;
    auto endpoint = resolve_logs_endpoint(cw.endpoint, s.region, &why);
    if (!endpoint) {
        return fail(why);
    }
    s.endpoint = std::move(*endpoint);
    s.spool_dir = cw.spool_dir;
    s.spool_max_bytes = cw.spool_max_bytes;
    s.imds_endpoint = config.imds_endpoint;
    s.imds_timeout = config.imds_timeout;
    return s;
}

shipper::shipper(shipper_settings settings, std::shared_ptr<asio::ssl::context> tls)
    : settings_(std::move(settings)),
      spool_(settings_.spool_dir, settings_.spool_max_bytes),
      credentials_(settings_.imds_endpoint, settings_.imds_timeout,
                   settings_.credentials_refresh_margin),
      client_(settings_.endpoint, settings_.region, std::move(tls)),
      random_(settings_.jitter_seed ? *settings_.jitter_seed : std::random_device{}()) {
    // Events dropped while an earlier run filled the spool were counted then; only new drops
    // are reported from here on.
    spool_dropped_seen_ = spool_.dropped();
    for (const auto& note : spool_.take_notes()) {
        spdlog::warn("{} {}", kv("event", "spool_note"), kv("note", note));
    }
    if (spool_dropped_seen_ > 0) {
        spdlog::warn("{} {} {}", kv("event", "spool_dropped"), kv("count", spool_dropped_seen_),
                     kv("reason", "damaged"));
        totals_.spool_dropped += spool_dropped_seen_;
    }
}

shipper::~shipper() = default;

std::size_t shipper::pending() const {
    return spool_.pending();
}

void shipper::report_spool() {
    for (const auto& note : spool_.take_notes()) {
        spdlog::warn("{} {}", kv("event", "spool_note"), kv("note", note));
    }
    const std::uint64_t dropped = spool_.dropped();
    if (dropped > spool_dropped_seen_) {
        const std::uint64_t delta = dropped - spool_dropped_seen_;
        spool_dropped_seen_ = dropped;
        dropped_since_flush_ += delta;
        totals_.spool_dropped += delta;
    }
}

bool shipper::publish(std::int64_t timestamp_ms, const std::string& message) {
    try {
        spool_.append(timestamp_ms, message);
    } catch (const std::exception& e) {
        spdlog::error("{} {}", kv("event", "spool_failed"), kv("error", e.what()));
        return false;
    }
    report_spool();
    return true;
}

milliseconds shipper::backoff(int attempt) {
    // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
    const int shift = std::clamp(attempt - 1, 0, 30);
    const auto ceiling = std::min<std::int64_t>(settings_.backoff_cap.count(),
                                                settings_.backoff_base.count() << shift);
    std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(ceiling, 0));
    return milliseconds(pick(random_));
}

asio::awaitable<bool> shipper::ensure_destination(asio::any_io_executor executor,
                                                  const aws_credentials& credentials,
                                                  steady_time deadline, logs_response& failure) {
    const auto call_deadline = [&] {
        return std::min(deadline, steady_clock::now() + settings_.request_timeout);
    };
    auto group = co_await client_.create_log_group(executor, settings_.log_group, credentials,
                                                   call_deadline());
    ++totals_.requests;
    if (group.outcome == logs_outcome::ok) {
        spdlog::info("{} {} {}", kv("event", "ship_created"), kv("what", "log_group"),
                     kv("name", settings_.log_group));
    } else if (group.outcome != logs_outcome::already_exists) {
        failure = std::move(group);
        co_return false;
    }
    auto stream = co_await client_.create_log_stream(
        executor, settings_.log_group, settings_.log_stream, credentials, call_deadline());
    ++totals_.requests;
    if (stream.outcome == logs_outcome::ok) {
        spdlog::info("{} {} {} {}", kv("event", "ship_created"), kv("what", "log_stream"),
                     kv("group", settings_.log_group), kv("name", settings_.log_stream));
    } else if (stream.outcome != logs_outcome::already_exists) {
        failure = std::move(stream);
        co_return false;
    }
    co_return true;
}

asio::awaitable<flush_result> shipper::flush(asio::any_io_executor executor, steady_time deadline) {
    flush_result result;
    const auto started = steady_clock::now();
    report_spool();

    std::size_t cap = settings_.limits.max_events;  // halved to find an event the service refuses
    int attempt = 0;                                // failed tries of the current batch
    bool fresh_credentials = false;  // the one immediate retry after a credential refusal is used
    bool created = false;            // the group and stream were created during this flush
    asio::steady_timer timer(executor);

    while (true) {
        if (spool_.pending() == 0) {
            result.drained = true;
            break;
        }
        if (steady_clock::now() >= deadline) {
            result.error = "the deadline passed";
            spdlog::warn("{} {} {}", kv("event", "ship_failed"), kv("reason", "deadline"),
                         kv("pending", spool_.pending()));
            break;
        }
        std::vector<spooled_event> pending = spool_.peek(cap, peek_bytes);
        if (pending.empty()) {
            pending = spool_.peek(1, std::numeric_limits<std::size_t>::max());  // one huge event
        }
        if (pending.empty()) {
            result.error = "the spool reports pending events but returns none";
            spdlog::error("{} {} {}", kv("event", "ship_failed"), kv("reason", "spool"),
                          kv("pending", spool_.pending()));
            break;
        }
        const log_batch batch = make_batch(pending, cap, settings_.limits);

        // Credentials first: the provider answers from its cache until the refresh margin.
        std::string reason;
        std::string detail;
        bool give_up = false;
        auto creds = co_await credentials_.get(executor, std::chrono::system_clock::now());
        if (!creds.credentials) {
            reason = "credentials";
            detail = creds.failure ? std::string(to_string(creds.failure->reason)) + ": " +
                                         creds.failure->detail
                                   : "no credentials";
        } else {
            const auto call_deadline =
                std::min(deadline, steady_clock::now() + settings_.request_timeout);
            logs_response answer =
                co_await client_.put_log_events(executor, settings_.log_group, settings_.log_stream,
                                                batch.events, *creds.credentials, call_deadline);
            ++totals_.requests;
            switch (answer.outcome) {
                case logs_outcome::ok: {
                    const std::size_t refused = rejected_count(answer.rejected, batch.taken);
                    spool_.acknowledge(batch.last_sequence);
                    result.sent += batch.taken - refused;
                    result.rejected += refused;
                    result.truncated += batch.truncated;
                    totals_.sent += batch.taken - refused;
                    totals_.rejected += refused;
                    totals_.truncated += batch.truncated;
                    if (refused > 0) {
                        spdlog::warn("{} {} {} {}", kv("event", "ship_rejected"),
                                     kv("reason", "out_of_range"), kv("count", refused),
                                     kv("batch", batch.taken));
                    }
                    if (batch.truncated > 0) {
                        spdlog::warn("{} {}", kv("event", "ship_truncated"),
                                     kv("count", batch.truncated));
                    }
                    spdlog::debug("{} {} {}", kv("event", "ship_batch"), kv("events", batch.taken),
                                  kv("bytes", batch.bytes));
                    attempt = 0;
                    fresh_credentials = false;
                    cap = settings_.limits.max_events;
                    continue;
                }
                case logs_outcome::resource_not_found:
                    if (!created) {
                        logs_response failure;
                        if (co_await ensure_destination(executor, *creds.credentials, deadline,
                                                        failure)) {
                            created = true;
                            continue;
                        }
                        answer = std::move(failure);
                        if (answer.outcome == logs_outcome::denied ||
                            answer.outcome == logs_outcome::invalid_request) {
                            result.error =
                                "cannot create the log group or stream: " + answer.error_type +
                                ": " + answer.message;
                            spdlog::warn("{} {} {} {} {}", kv("event", "ship_failed"),
                                         kv("reason", to_string(answer.outcome)),
                                         kv("type", answer.error_type),
                                         kv("message", answer.message),
                                         kv("pending", spool_.pending()));
                            give_up = true;
                            break;
                        }
                    }
                    // Just created: the service may take a moment to know them; back off.
                    reason = std::string(to_string(answer.outcome));
                    detail = answer.error_type + ": " + answer.message;
                    break;
                case logs_outcome::credentials_rejected:
                    credentials_.invalidate();
                    if (!fresh_credentials) {
                        fresh_credentials = true;
                        ++result.retries;
                        ++totals_.retries;
                        spdlog::info("{} {} {} {} {}", kv("event", "ship_retry"),
                                     kv("reason", "credentials_rejected"),
                                     kv("type", answer.error_type), kv("attempt", 1),
                                     kv("delay_ms", 0));
                        continue;
                    }
                    reason = "credentials_rejected";
                    detail = answer.error_type + ": " + answer.message;
                    break;
                case logs_outcome::invalid_request:
                    if (batch.taken > 1) {
                        // Halve until the event the service refuses is alone, then drop only it.
                        cap = batch.taken / 2;
                        spdlog::info("{} {} {} {}", kv("event", "ship_split"),
                                     kv("type", answer.error_type), kv("events", cap),
                                     kv("message", answer.message));
                        continue;
                    }
                    spool_.acknowledge(batch.last_sequence);
                    ++result.rejected;
                    ++totals_.rejected;
                    spdlog::warn("{} {} {} {} {}", kv("event", "ship_rejected"),
                                 kv("reason", "invalid_request"), kv("count", 1),
                                 kv("type", answer.error_type), kv("message", answer.message));
                    attempt = 0;
                    continue;
                case logs_outcome::denied:
                    result.error = answer.error_type + ": " + answer.message;
                    spdlog::warn("{} {} {} {} {} {}", kv("event", "ship_failed"),
                                 kv("reason", "denied"), kv("status", answer.status),
                                 kv("type", answer.error_type), kv("message", answer.message),
                                 kv("pending", spool_.pending()));
                    give_up = true;
                    break;
                case logs_outcome::already_exists:  // not an answer PutLogEvents gives
                case logs_outcome::throttled:
                case logs_outcome::server_error:
                case logs_outcome::network:
                    reason = std::string(to_string(answer.outcome));
                    detail = answer.error_type.empty() ? answer.message
                                                       : answer.error_type + ": " + answer.message;
                    break;
            }
            if (give_up) {  // the data stays in the spool; retrying now cannot help
                break;
            }
        }

        // Every path that reaches here waits and tries the same batch again, within bounds.
        ++attempt;
        ++result.retries;
        ++totals_.retries;
        const milliseconds delay = backoff(attempt);
        if (attempt >= settings_.max_attempts || steady_clock::now() + delay >= deadline) {
            result.error = reason + ": " + detail;
            spdlog::warn("{} {} {} {} {}", kv("event", "ship_failed"), kv("reason", reason),
                         kv("attempts", static_cast<std::uint64_t>(attempt)), kv("detail", detail),
                         kv("pending", spool_.pending()));
            break;
        }
        spdlog::info("{} {} {} {} {}", kv("event", "ship_retry"), kv("reason", reason),
                     kv("attempt", static_cast<std::uint64_t>(attempt)),
                     kv("delay_ms", static_cast<std::uint64_t>(delay.count())),
                     kv("detail", detail));
        boost::system::error_code ignored;
        timer.expires_after(delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }

    report_spool();
    // One line per flush, not per event: at the bound every append drops something.
    result.spool_dropped = std::exchange(dropped_since_flush_, 0);
    if (result.spool_dropped > 0) {
        spdlog::warn("{} {} {} {}", kv("event", "spool_dropped"), kv("count", result.spool_dropped),
                     kv("total", totals_.spool_dropped),
                     kv("max_bytes", settings_.spool_max_bytes));
    }
    result.remaining = spool_.pending();
    if (result.sent > 0 || result.rejected > 0) {
        const auto elapsed =
            std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count();
        spdlog::info("{} {} {} {} {} {}", kv("event", "ship_ok"), kv("sent", result.sent),
                     kv("rejected", result.rejected), kv("retries", result.retries),
                     kv("remaining", result.remaining),
                     kv("elapsed_ms", static_cast<std::uint64_t>(elapsed)));
    }
    co_return result;
}

asio::awaitable<flush_result> publish_and_flush(asio::any_io_executor executor, shipper& target,
                                                std::int64_t timestamp_ms, std::string message,
                                                milliseconds flush_timeout) {
    const auto deadline = steady_clock::now() + flush_timeout;
    if (!target.publish(timestamp_ms, message)) {
        // The event could not be spooled; still try to send what earlier runs left behind.
        flush_result result = co_await target.flush(executor, deadline);
        result.error = "the event could not be written to the spool" +
                       (result.error ? "; " + *result.error : std::string());
        co_return result;
    }
    co_return co_await target.flush(executor, deadline);
}

}  // namespace ssm_doctor
