// SPDX-License-Identifier: Apache-2.0
// The watch loop: timers for checks, samples, summaries and the watchdog on one io_context,
// checks on a worker thread, and the lines that say what changed.
#include "agent/watch.hpp"

#include <utility>

#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "agent/logging.hpp"
#include "agent/notify.hpp"
#include "agent/session_tracker.hpp"

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<int> check_threads{0};

// "0.1", "10", "3600": seconds as the configuration writes them.
std::string seconds_text(milliseconds ms) {
    const auto whole = std::to_string(ms.count() / 1000);
    auto fraction = std::to_string(1000 + ms.count() % 1000).substr(1);
    while (!fraction.empty() && fraction.back() == '0') {
        fraction.pop_back();
    }
    return fraction.empty() ? whole : whole + "." + fraction;
}

std::string or_dash(const std::string& text) {
    return text.empty() ? "-" : text;
}

std::string joined(const std::vector<std::string>& notes) {
    std::string text;
    for (const auto& note : notes) {
        text += text.empty() ? note : "; " + note;
    }
    return text;
}

void log_change(const check_change& change, const report& r) {
    for (const auto& key : change.cleared) {
        spdlog::info("{} {} {}", kv("event", "finding_cleared"), kv("id", key.id),
                     kv("service", or_dash(key.service)));
    }
    for (const auto& f : change.raised) {
        const auto level = f.level == severity::info ? spdlog::level::info : spdlog::level::warn;
        spdlog::log(level, "{} {} {} {} {} {}", kv("event", "finding_raised"), kv("id", f.id),
                    kv("severity", to_string(f.level)),
                    kv("service", f.svc ? to_string(*f.svc) : "-"), kv("message", f.message),
                    kv("remedy", f.remedy));
    }
    if (change.verdict_changed()) {
        spdlog::info("{} {} {} {} {} {}", kv("event", "verdict_changed"),
                     kv("verdict", to_string(change.current)),
                     kv("previous", change.previous ? to_string(*change.previous) : "-"),
                     kv("region", r.seen.region.value_or("-")),
                     kv("findings", std::to_string(r.findings.size())),
                     kv("elapsed_ms", std::to_string(r.seen.elapsed.count())));
    }
}

void log_session(const session_change& change) {
    spdlog::info("{} {} {} {} {} {} {}",
                 kv("event", change.opened ? "session_opened" : "session_closed"),
                 kv("service", or_dash(change.service)), kv("host", or_dash(change.host)),
                 kv("pid", std::to_string(change.pid)), kv("process", or_dash(change.process)),
                 kv("local", change.local), kv("remote", change.remote));
}

// What a check thread shares with the loop. The thread owns a reference, so the job outlives
// the loop when a stop leaves the check behind; the loop's executor is used only while the
// loop still wants the result (`abandoned` false), under the mutex.
struct check_job {
    explicit check_job(check_options o) : options(std::move(o)) {}

    const check_options options;
    std::mutex mutex;
    bool done = false;
    bool abandoned = false;
};

}  // namespace

finding_key key_of(const finding& f) {
    return {f.id, f.svc ? std::string(to_string(*f.svc)) : std::string()};
}

check_change change_detector::on_check(const report& r, steady::time_point now) {
    ++checks_;
    check_change change;
    change.previous = verdict_;
    change.current = r.overall;

    std::set<finding_key> current;
    for (const auto& f : r.findings) {
        auto key = key_of(f);
        // The same id may be listed twice for one service (per address); say it once.
        if (findings_.count(key) == 0 && current.count(key) == 0) {
            change.raised.push_back(f);
        }
        current.insert(std::move(key));
    }
    for (const auto& key : findings_) {
        if (current.count(key) == 0) {
            change.cleared.push_back(key);
        }
    }
    verdict_ = r.overall;
    findings_ = std::move(current);
    if (change.any()) {
        last_line_ = now;
    }
    return change;
}

std::optional<watch_summary> change_detector::take_summary(steady::time_point now,
                                                           milliseconds every,
                                                           std::size_t sessions) {
    if (now < last_line_ + every) {
        return std::nullopt;
    }
    watch_summary summary;
    summary.current = verdict_;
    summary.checks = checks_;
    summary.samples = samples_;
    summary.sessions = sessions;
    summary.period = std::chrono::duration_cast<milliseconds>(now - last_line_);
    checks_ = 0;
    samples_ = 0;
    last_line_ = now;
    return summary;
}

int checks_in_flight() {
    return check_threads.load();
}

class watch_loop::impl {
public:
    explicit impl(watch_options options)
        : options_(std::move(options)), config_(load()), detector_(steady::now()) {}

    ~impl() {
        // run() joins or abandons its check before returning; this covers a loop destroyed
        // while its check runs (run() never called again after a stop, or an exception).
        if (job_) {
            abandon_check();
        }
    }

    watch_result run() {
        started_ = steady::now();
        if (options_.handle_signals) {
            signals_.emplace(io_, SIGHUP, SIGTERM, SIGINT);
            wait_signals();
        }
        watchdog_ = watchdog_interval();
        spdlog::info("{} {} {} {} {} {} {}", kv("event", "watch_started"),
                     kv("config", config_path().string()),
                     kv("interval_s", seconds_text(config_.watch.interval)),
                     kv("sample_s", seconds_text(config_.watch.sample)),
                     kv("summary_s", seconds_text(config_.watch.summary)),
                     kv("watchdog_ms",
                        watchdog_ ? std::to_string(watchdog_->count() / 1000) : std::string("-")),
                     kv("pid", std::to_string(getpid())));
        // Ready once the configuration is loaded and the handlers are in place: the first
        // check may take seconds, and systemd should not wait for it.
        status_ = "STATUS=first check running";
        notify("READY=1\n" + status_);
        arm_watchdog();
        arm_summary();
        start_check();
        io_.run();
        return {0, abandoned_};
    }

    void request_stop() {
        asio::post(io_, [this] { begin_stop("request"); });
    }

    void request_reload() {
        asio::post(io_, [this] { reload(); });
    }

private:
    std::filesystem::path config_path() const {
        return options_.config_file.value_or(default_config_path);
    }

    doctor_config load() const {
        return options_.config_file ? load_config(*options_.config_file, true)
                                    : load_config(default_config_path, false);
    }

    void wait_signals() {
        signals_->async_wait([this](const boost::system::error_code& ec, int signal_number) {
            if (ec) {
                return;
            }
            if (signal_number == SIGHUP) {
                reload();
            } else {
                begin_stop(signal_number == SIGTERM ? "sigterm" : "sigint");
            }
            // Keep the handlers while stopping: a second SIGTERM must not kill the process
            // half-way through its last lines.
            wait_signals();
        });
    }

    void arm_watchdog() {
        if (!watchdog_ || stopping_) {
            return;
        }
        // Half the interval, as sd_watchdog_enabled(3) advises: a late ping still counts.
        watchdog_timer_.expires_after(*watchdog_ / 2);
        watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) {
                return;
            }
            notify("WATCHDOG=1");
            arm_watchdog();
        });
    }

    void arm_summary() {
        summary_timer_.expires_at(detector_.summary_due(config_.watch.summary));
        summary_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) {
                return;
            }
            if (const auto s = detector_.take_summary(steady::now(), config_.watch.summary,
                                                      tracker_.sessions().size())) {
                spdlog::info("{} {} {} {} {} {}", kv("event", "summary"),
                             kv("verdict", s->current ? to_string(*s->current) : "-"),
                             kv("checks", std::to_string(s->checks)),
                             kv("samples", std::to_string(s->samples)),
                             kv("sessions", std::to_string(s->sessions)),
                             kv("period_s", seconds_text(s->period)));
            }
            arm_summary();
        });
    }

    void arm_check(steady::time_point at) {
        check_timer_.expires_at(at);
        check_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) {
                return;
            }
            start_check();
        });
    }

    void arm_sample() {
        sample_timer_.expires_after(config_.watch.sample);
        sample_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) {
                return;
            }
            sample();
            arm_sample();
        });
    }

    void start_check() {
        if (stopping_) {
            return;
        }
        if (job_) {
            check_again_ = true;  // one check at a time; the next starts when this one ends
            return;
        }
        check_options options;
        options.config = config_;
        options.host = options_.host;
        options.ask_package_managers = options_.ask_package_managers;
        auto job = std::make_shared<check_job>(std::move(options));
        job_ = job;
        check_started_ = steady::now();
        ++check_threads;
        check_thread_ = std::thread([job, executor = io_.get_executor(), this] {
            std::optional<observations> seen;
            std::string error;
            try {
                seen = run_check(job->options);
            } catch (const std::exception& e) {
                error = e.what();
            }
            {
                const std::lock_guard lock(job->mutex);
                job->done = true;
                if (!job->abandoned) {
                    asio::post(executor, [this, job, seen = std::move(seen),
                                          error = std::move(error)]() mutable {
                        on_check_done(job, std::move(seen), error);
                    });
                }
            }
            --check_threads;
        });
    }

    void on_check_done(const std::shared_ptr<check_job>& job, std::optional<observations> seen,
                       const std::string& error) {
        if (job != job_) {
            return;  // a check already abandoned or joined
        }
        check_thread_.join();
        job_.reset();
        if (stopping_) {
            grace_timer_.cancel();
            finish();
            return;
        }
        ++checks_;
        if (seen) {
            on_report(judge(std::move(*seen),
                            verdict_policy{config_.ec2messages_unsupported_regions},
                            std::chrono::system_clock::now()));
        } else if (error != last_check_error_) {
            // Only setup errors get here (an unusable tls.ca_file); once per distinct error.
            spdlog::error("{} {}", kv("event", "check_failed"), kv("error", error));
            notify("STATUS=check failed: " + error);
        }
        last_check_error_ = seen ? std::string() : error;
        // A check allocates a few MiB (TLS contexts, the trust store, the observations) on its
        // own thread's malloc arena and frees them all; give the pages back rather than keep
        // them resident for the next 5 minutes.
        malloc_trim(0);
        if (check_again_) {
            check_again_ = false;
            start_check();
        } else {
            arm_check(check_started_ + config_.watch.interval);
        }
    }

    void on_report(const report& r) {
        const auto now = steady::now();
        log_change(detector_.on_check(r, now), r);
        spdlog::debug("{} {} {} {}", kv("event", "check"), kv("verdict", to_string(r.overall)),
                      kv("findings", std::to_string(r.findings.size())),
                      kv("elapsed_ms", std::to_string(r.seen.elapsed.count())));
        context_ = session_context_of(r.seen);
        if (options_.observer) {
            options_.observer->on_check(r);
        }
        // Samples start after the first check: before it, sessions could not be named.
        if (!sampling_) {
            sampling_ = true;
            sample();
            arm_sample();
        }
        // Only a new status is sent: each datagram wakes systemd, and its queue is short.
        auto status = "STATUS=verdict " + std::string(to_string(r.overall)) + ", " +
                      std::to_string(r.findings.size()) + " findings, " +
                      std::to_string(tracker_.sessions().size()) + " agent sessions";
        if (status != status_) {
            status_ = std::move(status);
            notify(status_);
        }
    }

    void sample() {
        const auto observation = read_socket_table(options_.host.proc_root, context_.ports);
        ++samples_;
        detector_.on_sample();

        std::string problem;
        if (!observation.table_read) {
            problem = "the socket table could not be read: " + joined(observation.notes);
        } else if (!observation.attribution_complete) {
            problem = "sessions without an owner are not followed: " + joined(observation.notes);
        }
        if (problem != last_sample_problem_ && !problem.empty()) {
            spdlog::warn("{} {}", kv("event", "sample_degraded"), kv("note", problem));
        }
        last_sample_problem_ = problem;
        if (!observation.table_read) {
            return;  // an unreadable table says nothing about the sessions: keep the last
        }

        const auto changes = tracker_.update(agent_sessions(observation, context_),
                                             context_.endpoints, std::chrono::system_clock::now());
        for (const auto& change : changes) {
            log_session(change);
            if (options_.observer) {
                options_.observer->on_session_change(change);
            }
        }
        if (!changes.empty()) {
            detector_.on_activity(steady::now());
        }
    }

    void reload() {
        if (stopping_) {
            return;
        }
        notify_reloading();
        try {
            config_ = load();
            spdlog::info("{} {} {} {} {}", kv("event", "config_reloaded"),
                         kv("config", config_path().string()),
                         kv("interval_s", seconds_text(config_.watch.interval)),
                         kv("sample_s", seconds_text(config_.watch.sample)),
                         kv("summary_s", seconds_text(config_.watch.summary)));
            // The new settings apply at once: a check now, timers with the new periods.
            arm_summary();
            if (sampling_) {
                arm_sample();
            }
            check_timer_.cancel();
            start_check();
        } catch (const config_error& e) {
            spdlog::warn("{} {} {} {}", kv("event", "config_rejected"),
                         kv("config", config_path().string()), kv("error", e.what()),
                         kv("kept", "previous"));
        }
        notify("READY=1\n" + status_);
    }

    void begin_stop(const std::string& reason) {
        if (stopping_) {
            return;
        }
        stopping_ = true;
        stop_reason_ = reason;
        notify("STOPPING=1");
        check_timer_.cancel();
        sample_timer_.cancel();
        summary_timer_.cancel();
        watchdog_timer_.cancel();
        if (!job_) {
            finish();
            return;
        }
        // A check is running: give it until the grace period ends, then leave it behind.
        grace_timer_.expires_after(options_.stop_grace);
        grace_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || !job_) {
                return;
            }
            abandon_check();
            finish();
        });
    }

    // Joins the check if it has already ended, else lets it run on without the loop.
    void abandon_check() {
        bool ended = false;
        {
            const std::lock_guard lock(job_->mutex);
            ended = job_->done;
            job_->abandoned = !ended;
        }
        if (ended) {
            check_thread_.join();
        } else {
            check_thread_.detach();
            abandoned_ = true;
        }
        job_.reset();
    }

    void finish() {
        if (finished_) {
            return;
        }
        finished_ = true;
        const auto uptime = std::chrono::duration_cast<milliseconds>(steady::now() - started_);
        spdlog::info("{} {} {} {} {} {}", kv("event", "watch_stopped"), kv("reason", stop_reason_),
                     kv("checks", std::to_string(checks_)), kv("samples", std::to_string(samples_)),
                     kv("uptime_s", seconds_text(uptime)),
                     kv("check_abandoned", abandoned_ ? "true" : "false"));
        if (signals_) {
            signals_->cancel();
        }
        io_.stop();
    }

    watch_options options_;
    doctor_config config_;
    asio::io_context io_{1};
    asio::steady_timer check_timer_{io_};
    asio::steady_timer sample_timer_{io_};
    asio::steady_timer summary_timer_{io_};
    asio::steady_timer watchdog_timer_{io_};
    asio::steady_timer grace_timer_{io_};
    std::optional<asio::signal_set> signals_;
    std::optional<std::chrono::microseconds> watchdog_;

    change_detector detector_;
    session_tracker tracker_;
    session_context context_;  // from the last successful check
    bool sampling_ = false;
    std::string status_;
    std::string last_check_error_;
    std::string last_sample_problem_;

    std::thread check_thread_;
    std::shared_ptr<check_job> job_;  // the running check, if any
    bool check_again_ = false;
    steady::time_point check_started_;

    steady::time_point started_;
    std::uint64_t checks_ = 0;
    std::uint64_t samples_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    bool abandoned_ = false;
    std::string stop_reason_;
};

watch_loop::watch_loop(watch_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

watch_loop::~watch_loop() = default;

watch_result watch_loop::run() {
    return impl_->run();
}

void watch_loop::request_stop() {
    impl_->request_stop();
}

void watch_loop::request_reload() {
    impl_->request_reload();
}

}  // namespace ssm_doctor
