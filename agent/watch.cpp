// SPDX-License-Identifier: Apache-2.0
// The watch loop: timers for checks, samples, summaries and the watchdog on one io_context,
// each check in a worker process, and the lines that say what changed.
#include "agent/watch.hpp"

#include <utility>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/check_worker.hpp"
#include "agent/logging.hpp"
#include "agent/notify.hpp"
#include "agent/session_tracker.hpp"
#include "probes/unique_fd.hpp"

extern char** environ;

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<int> check_workers{0};

// A reply larger than this is not a reply (a check's observations are a few KiB).
constexpr std::size_t max_reply_bytes = 16 * 1024 * 1024;

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

// A started worker: its pid and the read end of its stdout.
struct spawned_worker {
    pid_t pid = -1;
    unique_fd reply;
};

// Starts `executable _observe` with `request` on its stdin (written here and closed) and its
// stdout on a pipe; stderr is the daemon's, so whatever the worker says reaches the same log.
spawned_worker spawn_worker(const std::filesystem::path& executable, const std::string& request) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe");
    }
    unique_fd in_read(in[0]);
    unique_fd in_write(in[1]);
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe");
    }
    unique_fd out_read(out[0]);
    unique_fd out_write(out[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
    // Nothing else of the daemon's (the event log, sockets) goes to the worker.
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);  // the daemon ignores it; the worker need not
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);

    const std::string path = executable.string();
    char arg0[] = "ssm-doctor";
    char arg1[] = "_observe";
    char* argv[] = {arg0, arg1, nullptr};
    pid_t pid = -1;
    const int failed = posix_spawn(&pid, path.c_str(), &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (failed != 0) {
        throw std::system_error(failed, std::generic_category(), "cannot start " + path);
    }
    in_read.reset();
    out_write.reset();
    // The request is a few KiB, below a pipe's capacity; a worker that died at once makes this
    // fail with EPIPE (SIGPIPE is ignored), and its reply tells why.
    std::size_t written = 0;
    while (written < request.size()) {
        const auto n = ::write(in_write.get(), request.data() + written, request.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        written += static_cast<std::size_t>(n);
    }
    return {pid, std::move(out_read)};
}

// "exited with status 3", "was killed by signal 9".
std::string exit_text(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "was killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "ended with wait status " + std::to_string(status);
}

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
    return check_workers.load();
}

class watch_loop::impl {
public:
    explicit impl(watch_options options) : options_(std::move(options)), detector_(steady::now()) {
        load();
    }

    ~impl() {
        // run() ends its check before returning; this covers a loop destroyed while its check
        // runs (run() never called after a stop, or an exception).
        kill_check();
    }

    watch_result run() {
        started_ = steady::now();
        if (options_.handle_signals) {
            signals_.emplace(io_, SIGHUP, SIGTERM, SIGINT);
            wait_signals();
        }
        // A worker that ends before reading its request must not end the daemon.
        std::signal(SIGPIPE, SIG_IGN);
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
        return {0};
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

    // Reads and parses the file; on success the loop uses it, and its text goes to the workers.
    void load() {
        auto text = read_config_file(config_path(), options_.config_file.has_value());
        config_ = parse_config(text, config_path().string());
        config_text_ = std::move(text);
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
        check_started_ = steady::now();
        worker_request request;
        request.config_text = config_text_;
        request.config_source = config_path().string();
        request.host = options_.host;
        request.ask_package_managers = options_.ask_package_managers;
        spawned_worker worker;
        try {
            worker = spawn_worker(options_.worker, encode_worker_request(request));
        } catch (const std::system_error& e) {
            on_check_failed(e.what());
            return;
        }
        ++check_workers;
        job_.emplace(io_, worker.pid, worker.reply.release());
        // The worker ends by its own deadline; this is for one that does not.
        job_->deadline.expires_after(config_.imds_timeout + config_.probe_timeout +
                                     options_.worker_slack);
        job_->deadline.async_wait([this, pid = worker.pid](const boost::system::error_code& ec) {
            if (!ec && job_ && job_->pid == pid) {
                job_->overdue = true;
                ::kill(pid, SIGKILL);  // its stdout closes: read_reply sees the end
            }
        });
        read_reply();
    }

    void read_reply() {
        job_->reply.async_read_some(asio::buffer(job_->buffer),
                                    [this](const boost::system::error_code& ec, std::size_t n) {
                                        if (ec == asio::error::operation_aborted || !job_) {
                                            return;  // kill_check() took over
                                        }
                                        job_->text.append(job_->buffer.data(), n);
                                        if (!ec && job_->text.size() <= max_reply_bytes) {
                                            read_reply();
                                            return;
                                        }
                                        if (!ec) {
                                            ::kill(job_->pid, SIGKILL);
                                        }
                                        await_exit();
                                    });
    }

    // The worker closed its stdout: it is ending, or was killed. Its exit is awaited without
    // blocking the loop (a worker that closed stdout and went on would otherwise hold the
    // watchdog); the deadline timer still kills one that does not end.
    void await_exit() {
        int status = 0;
        pid_t ended = 0;
        do {
            ended = ::waitpid(job_->pid, &status, WNOHANG);
        } while (ended < 0 && errno == EINTR);
        if (ended == 0) {
            job_->exit_poll.expires_after(milliseconds(5));
            job_->exit_poll.async_wait([this](const boost::system::error_code& ec) {
                if (!ec && job_) {
                    await_exit();
                }
            });
            return;
        }
        on_worker_done(status);
    }

    // The worker has ended with `status`: use its reply.
    void on_worker_done(int status) {
        std::string text = std::move(job_->text);
        const bool overdue = job_->overdue;
        job_.reset();
        --check_workers;
        if (stopping_) {
            return;
        }
        ++checks_;
        std::optional<observations> seen;
        std::string error;
        if (overdue) {
            error =
                "the check worker was killed: still running " +
                seconds_text(config_.imds_timeout + config_.probe_timeout + options_.worker_slack) +
                " s after it started";
        } else if (text.size() > max_reply_bytes) {
            error = "the check worker's reply passed " + std::to_string(max_reply_bytes) +
                    " bytes; it was killed";
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            error = "the check worker " + exit_text(status);
        } else {
            try {
                seen = decode_worker_reply(text);
            } catch (const worker_error& e) {
                error = e.what();
            }
        }
        if (seen) {
            last_check_error_.clear();
            on_report(judge(std::move(*seen),
                            verdict_policy{config_.ec2messages_unsupported_regions},
                            std::chrono::system_clock::now()));
            next_check();
        } else {
            on_check_failed(error);
        }
    }

    // A check that produced no observations: logged once per distinct error, and the next one
    // comes at the usual time.
    void on_check_failed(const std::string& error) {
        if (error != last_check_error_) {
            spdlog::error("{} {}", kv("event", "check_failed"), kv("error", error));
            notify("STATUS=check failed: " + error);
        }
        last_check_error_ = error;
        next_check();
    }

    void next_check() {
        if (check_again_) {
            check_again_ = false;
            start_check();
        } else {
            arm_check(check_started_ + config_.watch.interval);
        }
    }

    static int reap(pid_t pid) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return status;
    }

    // Ends a running check at once: its worker is killed and reaped.
    void kill_check() {
        if (!job_) {
            return;
        }
        ::kill(job_->pid, SIGKILL);
        reap(job_->pid);
        job_.reset();
        --check_workers;
        killed_ = true;
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
            load();
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
        // A running check is a process: it ends now, whatever it was waiting for.
        kill_check();
        finish();
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
                     kv("check_killed", killed_ ? "true" : "false"));
        if (signals_) {
            signals_->cancel();
        }
        io_.stop();
    }

    // The check running now: its worker process and what it has written so far.
    struct check_job {
        check_job(asio::io_context& io, pid_t worker, int reply_fd)
            : pid(worker), reply(io, reply_fd), deadline(io), exit_poll(io) {}
        pid_t pid;
        asio::posix::stream_descriptor reply;
        asio::steady_timer deadline;
        asio::steady_timer exit_poll;
        std::array<char, 16384> buffer{};
        std::string text;
        bool overdue = false;
    };

    watch_options options_;
    doctor_config config_;
    std::string config_text_;  // what config_ was parsed from, for the workers
    asio::io_context io_{1};
    asio::steady_timer check_timer_{io_};
    asio::steady_timer sample_timer_{io_};
    asio::steady_timer summary_timer_{io_};
    asio::steady_timer watchdog_timer_{io_};
    std::optional<asio::signal_set> signals_;
    std::optional<std::chrono::microseconds> watchdog_;

    change_detector detector_;
    session_tracker tracker_;
    session_context context_;  // from the last successful check
    bool sampling_ = false;
    std::string status_;
    std::string last_check_error_;
    std::string last_sample_problem_;

    std::optional<check_job> job_;  // the running check, if any
    bool check_again_ = false;
    steady::time_point check_started_;

    steady::time_point started_;
    std::uint64_t checks_ = 0;
    std::uint64_t samples_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    bool killed_ = false;  // a stop ended a running check
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
