// SPDX-License-Identifier: Apache-2.0
// `ssm-doctor watch`: the long-running mode for systemd. A full check every watch.interval, a
// socket-table sample every watch.sample, log lines only for what changed, and a summary while
// nothing does. Events and keys are listed in docs/logging.md.
//
// One thread runs one io_context with every timer, the signals and the watchdog. Each check runs
// in a worker process (`ssm-doctor _observe`, check_worker.hpp) that gets the configuration the
// loop loaded and sends the observations back on a pipe, read on the loop; the verdict is judged
// here. So pings and signals are answered during a check, and the pages a check touches (most of
// OpenSSL, the trust store, its allocations) leave with the worker instead of staying resident.
//
// Stopping: SIGTERM or SIGINT (or request_stop()) ends run() within a few milliseconds. A check
// still running then is a process: it is killed and reaped, and nothing is left behind. A worker
// still running imds.timeout + probe.timeout + worker_slack (5 s) after its start is killed
// too, and the check counts as failed (check_failed).
//
// Memory: the loop keeps the last sample's sessions, the current findings' keys and a few
// counters; nothing grows with the number of checks or samples.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/check.hpp"
#include "agent/config.hpp"
#include "agent/events.hpp"
#include "agent/verdict.hpp"

namespace ssm_doctor {

// What changed between two checks, by finding id and service.
struct finding_key {
    std::string id;
    std::string service;  // "" when the finding names no service

    auto operator<=>(const finding_key&) const = default;
};

finding_key key_of(const finding& f);

struct check_change {
    std::optional<verdict> previous;  // nullopt at the first check
    verdict current = verdict::unknown;
    std::vector<finding> raised;       // in the report's order (most severe first)
    std::vector<finding_key> cleared;  // ordered by (id, service)

    bool verdict_changed() const { return !previous || *previous != current; }
    bool any() const { return verdict_changed() || !raised.empty() || !cleared.empty(); }
};

// Counts since the last summary, for the line written while nothing changes.
struct watch_summary {
    std::optional<verdict> current;  // nullopt before the first check
    std::uint64_t checks = 0;
    std::uint64_t samples = 0;
    std::size_t sessions = 0;             // agent sessions held at the last sample
    std::chrono::milliseconds period{0};  // since the last summary or change
};

// Pure: decides which lines a check deserves and when a summary is due. Time is given, never
// read. Keeps only the previous verdict and the set of current finding keys.
class change_detector {
public:
    explicit change_detector(std::chrono::steady_clock::time_point start) : last_line_(start) {}

    // The first check reports its verdict as changed and every finding as raised.
    check_change on_check(const report& r, std::chrono::steady_clock::time_point now);
    void on_sample() { ++samples_; }
    // A line that already tells the reader the daemon is alive (a session change) postpones
    // the summary as a verdict change does.
    void on_activity(std::chrono::steady_clock::time_point now) { last_line_ = now; }

    // When the next summary is due if nothing changes before.
    std::chrono::steady_clock::time_point summary_due(std::chrono::milliseconds every) const {
        return last_line_ + every;
    }
    // The summary when `every` has passed since the last line; the counts start again.
    std::optional<watch_summary> take_summary(std::chrono::steady_clock::time_point now,
                                              std::chrono::milliseconds every,
                                              std::size_t sessions);

    std::optional<verdict> current() const { return verdict_; }

private:
    std::optional<verdict> verdict_;
    std::set<finding_key> findings_;
    std::chrono::steady_clock::time_point last_line_;
    std::uint64_t checks_ = 0;
    std::uint64_t samples_ = 0;
};

// Callbacks for what the watch sees, for an event log or a shipper. Called on the loop's
// thread; they must not block for long (the watchdog waits behind them). Default: nothing.
class watch_observer {
public:
    virtual ~watch_observer() = default;
    virtual void on_check(const report& r) { (void)r; }
    virtual void on_session_change(const session_change& change) { (void)change; }
};

struct watch_options {
    std::optional<std::filesystem::path> config_file;  // nullopt: the default, may be missing
    host_paths host;
    bool ask_package_managers = true;
    // SIGHUP reloads, SIGTERM and SIGINT stop. Off in tests that drive the loop by its API.
    bool handle_signals = true;
    // The executable run as `<worker> _observe` for each check: this one. Tests, which are other
    // executables, name the ssm-doctor they built.
    std::filesystem::path worker = "/proc/self/exe";
    // How long past its own deadline (imds.timeout + probe.timeout) a worker may run before it
    // is killed: its start-up, the agent's -version and package queries, a loaded machine.
    std::chrono::milliseconds worker_slack{5000};
    watch_observer* observer = nullptr;  // not owned; must outlive run()
};

struct watch_result {
    int exit_code = 0;
};

class watch_loop {
public:
    // Loads the configuration (throws config_error: a daemon with a bad file does not start).
    explicit watch_loop(watch_options options);
    ~watch_loop();
    watch_loop(const watch_loop&) = delete;
    watch_loop& operator=(const watch_loop&) = delete;

    // Runs until stopped; logs through spdlog's default logger.
    watch_result run();

    // Thread-safe; the signal handlers call these.
    void request_stop();
    void request_reload();

private:
    class impl;
    std::unique_ptr<impl> impl_;
};

// Check workers started and not yet reaped, in this process; for tests and diagnostics.
int checks_in_flight();

}  // namespace ssm_doctor
