// SPDX-License-Identifier: Apache-2.0
// Tests of `ssm-doctor watch`: the change detector, sd_notify, and the loop end to end on a fake
// host with loopback TLS servers, tiny intervals and a bounded run.
#include <utility>

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/notify.hpp"
#include "agent/watch.hpp"
#include "probes/unique_fd.hpp"
#include "tests/support/loopback_servers.hpp"
#include "tests/support/test_certs.hpp"

using namespace ssm_doctor;
using namespace ssm_doctor::testing;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// --- the change detector --------------------------------------------------------------------

finding make_finding(const std::string& id, std::optional<service> svc,
                     severity level = severity::warning) {
    finding f;
    f.id = id;
    f.svc = svc;
    f.level = level;
    f.message = id + " message";
    return f;
}

report make_report(verdict overall, std::vector<finding> findings) {
    report r;
    r.overall = overall;
    r.findings = std::move(findings);
    return r;
}

}  // namespace

TEST_CASE("the first check reports its verdict and every finding", "[watch][verdict]") {
    const auto t0 = steady::time_point(100s);
    change_detector detector(t0);
    const auto change = detector.on_check(
        make_report(verdict::critical, {make_finding("required_endpoint_unreachable",
                                                     service::ssmmessages, severity::critical),
                                        make_finding("certificate_expiring", service::ssm)}),
        t0);
    CHECK_FALSE(change.previous);
    CHECK(change.current == verdict::critical);
    CHECK(change.verdict_changed());
    REQUIRE(change.raised.size() == 2);
    CHECK(change.raised[0].id == "required_endpoint_unreachable");
    CHECK(change.cleared.empty());
    CHECK(detector.current() == verdict::critical);
}

TEST_CASE("later checks report only what changed", "[watch][verdict]") {
    const auto t0 = steady::time_point(100s);
    change_detector detector(t0);
    const auto unreachable =
        make_finding("required_endpoint_unreachable", service::ssmmessages, severity::critical);
    const auto no_dns = make_finding("private_dns_missing", std::nullopt);
    detector.on_check(make_report(verdict::critical, {unreachable, no_dns}), t0);

    SECTION("the same findings and verdict: nothing to say") {
        const auto change =
            detector.on_check(make_report(verdict::critical, {no_dns, unreachable}), t0 + 1s);
        CHECK_FALSE(change.any());
        CHECK_FALSE(change.verdict_changed());
    }
    SECTION("a finding cleared and the verdict improved") {
        const auto change = detector.on_check(make_report(verdict::warning, {no_dns}), t0 + 1s);
        CHECK(change.verdict_changed());
        CHECK(change.previous == verdict::critical);
        CHECK(change.current == verdict::warning);
        CHECK(change.raised.empty());
        REQUIRE(change.cleared.size() == 1);
        CHECK(change.cleared[0] == finding_key{"required_endpoint_unreachable", "ssmmessages"});
    }
    SECTION("the same id for another service is another finding, the verdict unchanged") {
        const auto other =
            make_finding("required_endpoint_unreachable", service::ssm, severity::critical);
        const auto change =
            detector.on_check(make_report(verdict::critical, {unreachable, other, no_dns}), t0);
        CHECK_FALSE(change.verdict_changed());
        REQUIRE(change.raised.size() == 1);
        CHECK(change.raised[0].svc == service::ssm);
        CHECK(change.cleared.empty());
    }
    SECTION("a finding listed twice in one report is raised once") {
        detector.on_check(make_report(verdict::critical, {unreachable}), t0);
        const auto change =
            detector.on_check(make_report(verdict::critical, {unreachable, no_dns, no_dns}), t0);
        CHECK(change.raised.size() == 1);
    }
}

TEST_CASE("a summary is due only after a quiet period, with the counts since the last one",
          "[watch]") {
    const auto t0 = steady::time_point(100s);
    const auto every = 60s;
    change_detector detector(t0);
    detector.on_check(make_report(verdict::ok, {}), t0);  // the first verdict is a line
    detector.on_sample();
    detector.on_sample();
    detector.on_check(make_report(verdict::ok, {}), t0 + 30s);  // unchanged: no line

    CHECK(detector.summary_due(every) == t0 + every);
    CHECK_FALSE(detector.take_summary(t0 + 59s, every, 3));
    const auto summary = detector.take_summary(t0 + 60s, every, 3);
    REQUIRE(summary);
    CHECK(summary->current == verdict::ok);
    CHECK(summary->checks == 2);
    CHECK(summary->samples == 2);
    CHECK(summary->sessions == 3);
    CHECK(summary->period == 60s);

    SECTION("the counts start again") {
        detector.on_sample();
        const auto next = detector.take_summary(t0 + 120s, every, 1);
        REQUIRE(next);
        CHECK(next->checks == 0);
        CHECK(next->samples == 1);
    }
    SECTION("a change or a session line postpones it") {
        detector.on_check(make_report(verdict::warning, {make_finding("x", std::nullopt)}),
                          t0 + 100s);
        CHECK(detector.summary_due(every) == t0 + 160s);
        detector.on_activity(t0 + 150s);
        CHECK_FALSE(detector.take_summary(t0 + 200s, every, 0));
        CHECK(detector.take_summary(t0 + 210s, every, 0));
    }
    SECTION("before any check the summary has no verdict") {
        change_detector fresh(t0);
        const auto early = fresh.take_summary(t0 + every, every, 0);
        REQUIRE(early);
        CHECK_FALSE(early->current);
    }
}

namespace {

// --- sd_notify ------------------------------------------------------------------------------

// Sets an environment variable for the scope of a test; none of the loop's threads runs yet.
class scoped_env {
public:
    scoped_env(const char* name, const std::string& value) : name_(name) {
        ::setenv(name, value.c_str(), 1);
    }
    ~scoped_env() { ::unsetenv(name_); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* name_;
};

// A unix datagram socket standing in for systemd's notification socket. Like systemd it reads
// all the time: a full queue (10 datagrams by default) would block the sender in sd_notify.
class notify_listener {
public:
    // `name` is a path, or "@name" for Linux's abstract namespace, as in $NOTIFY_SOCKET.
    explicit notify_listener(const std::string& name)
        : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        REQUIRE(fd_.get() >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        REQUIRE(name.size() < sizeof address.sun_path);
        std::memcpy(address.sun_path, name.data(), name.size());
        auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        if (name.front() == '@') {
            address.sun_path[0] = '\0';
        } else {
            length += 1;
        }
        // Like systemd's: the kernel attaches the sender's credentials to each datagram.
        const int on = 1;
        REQUIRE(::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
        REQUIRE(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), length) == 0);
        timeval timeout{0, 20'000};  // the reader looks at `stop_` this often
        REQUIRE(::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
        reader_ = std::thread([this] { read_until_stopped(); });
    }

    ~notify_listener() {
        stop_ = true;
        reader_.join();
    }

    notify_listener(const notify_listener&) = delete;
    notify_listener& operator=(const notify_listener&) = delete;

    // Every message received so far, in order.
    std::vector<std::string> messages() const {
        const std::lock_guard lock(mutex_);
        return messages_;
    }

    // The sender's pid as the kernel gave it with each message (0 when none came with it).
    std::vector<pid_t> senders() const {
        const std::lock_guard lock(mutex_);
        return senders_;
    }

    bool received(const std::string& part) const {
        for (const auto& m : messages()) {
            if (m.find(part) != std::string::npos) {
                return true;
            }
        }
        return false;
    }

private:
    void read_until_stopped() {
        char buffer[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        while (!stop_) {
            iovec data{buffer, sizeof buffer};
            msghdr message{};
            message.msg_iov = &data;
            message.msg_iovlen = 1;
            message.msg_control = control;
            message.msg_controllen = sizeof control;
            const auto n = ::recvmsg(fd_.get(), &message, 0);
            if (n > 0) {
                pid_t sender = 0;
                for (auto* c = CMSG_FIRSTHDR(&message); c != nullptr;
                     c = CMSG_NXTHDR(&message, c)) {
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        ucred credentials{};
                        std::memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
                        sender = credentials.pid;
                    }
                }
                const std::lock_guard lock(mutex_);
                messages_.emplace_back(buffer, static_cast<std::size_t>(n));
                senders_.push_back(sender);
            }
        }
    }

    unique_fd fd_;
    mutable std::mutex mutex_;
    std::vector<std::string> messages_;
    std::vector<pid_t> senders_;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

// Polls `condition` every 10 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto until = steady::now() + limit;
    while (!condition()) {
        if (steady::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

}  // namespace

TEST_CASE("notifications go to NOTIFY_SOCKET and nowhere without it", "[watch][notify]") {
    temp_dir dir;
    SECTION("no service manager") {
        ::unsetenv("NOTIFY_SOCKET");
        CHECK_FALSE(notify("READY=1"));
    }
    SECTION("a listening socket receives each state, with this process as the sender") {
        notify_listener listener((dir.path() / "notify").string());
        scoped_env env("NOTIFY_SOCKET", (dir.path() / "notify").string());
        CHECK(notify("READY=1\nSTATUS=first check running"));
        CHECK(notify_reloading());
        REQUIRE(eventually([&] { return listener.messages().size() == 2; }, 1s));
        CHECK(listener.messages()[0] == "READY=1\nSTATUS=first check running");
        CHECK_THAT(listener.messages()[1], Catch::StartsWith("RELOADING=1\nMONOTONIC_USEC="));
        CHECK(listener.senders() == std::vector<pid_t>{::getpid(), ::getpid()});
    }
    SECTION("an abstract socket: '@' stands for the leading NUL") {
        const auto name = "@ssm-doctor-test-notify-" + std::to_string(::getpid());
        notify_listener listener(name);
        scoped_env env("NOTIFY_SOCKET", name);
        CHECK(notify("WATCHDOG=1"));
        REQUIRE(eventually([&] { return listener.messages().size() == 1; }, 1s));
        CHECK(listener.messages()[0] == "WATCHDOG=1");
    }
    SECTION("a socket nobody listens on is a failed send, not an error") {
        scoped_env env("NOTIFY_SOCKET", (dir.path() / "nobody").string());
        CHECK_FALSE(notify("READY=1"));
    }
    SECTION("addresses that cannot be a unix socket are refused without a send") {
        const std::vector<std::string> names{"", "@", "relative/path", "vsock:2:1234",
                                             "/" + std::string(200, 'x')};
        for (const auto& name : names) {
            scoped_env env("NOTIFY_SOCKET", name);
            CHECK_FALSE(notify("READY=1"));
        }
    }
}

TEST_CASE("the watchdog interval comes from WATCHDOG_USEC when it is meant for this process",
          "[watch][notify]") {
    ::unsetenv("WATCHDOG_PID");
    SECTION("unset") {
        ::unsetenv("WATCHDOG_USEC");
        CHECK_FALSE(watchdog_interval());
    }
    SECTION("set, for any process") {
        scoped_env usec("WATCHDOG_USEC", "30000000");
        CHECK(watchdog_interval() == std::chrono::microseconds(30'000'000));
    }
    SECTION("set for this pid") {
        scoped_env usec("WATCHDOG_USEC", "2000000");
        scoped_env pid("WATCHDOG_PID", std::to_string(::getpid()));
        CHECK(watchdog_interval() == std::chrono::microseconds(2'000'000));
    }
    SECTION("set for another process (inherited from a parent)") {
        scoped_env usec("WATCHDOG_USEC", "2000000");
        scoped_env pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
        CHECK_FALSE(watchdog_interval());
    }
    SECTION("not a number") {
        scoped_env usec("WATCHDOG_USEC", "soon");
        CHECK_FALSE(watchdog_interval());
    }
}

namespace {

// --- the loop on a fake host ----------------------------------------------------------------

const std::vector<std::string> lab_hosts{"ssm.lab.test", "ssmmessages.lab.test",
                                         "ec2messages.lab.test"};

// "0100007F:01BB": how /proc/net/tcp prints 127.0.0.1:443 on a little-endian host.
std::string proc_net_v4(const asio::ip::tcp::endpoint& ep) {
    const auto bytes = ep.address().to_v4().to_bytes();
    char text[16];
    std::snprintf(text, sizeof text, "%02X%02X%02X%02X:%04X", bytes[3], bytes[2], bytes[1],
                  bytes[0], ep.port());
    return text;
}

// One loopback server per endpoint, all behaving alike.
class endpoint_servers : public endpoint_server_set {
public:
    explicit endpoint_servers(server_behaviour behaviour)
        : endpoint_server_set(servers_for(behaviour)) {}

private:
    static std::vector<server> servers_for(server_behaviour behaviour) {
        std::vector<server> servers;
        for (const auto& host : lab_hosts) {
            servers.push_back({server_spec(host), behaviour});
        }
        return servers;
    }
};

// A host for the watch: the agent's config points every endpoint at a loopback server, /proc
// is a directory the test fills (an agent worker, pid 4242), ssm-doctor's YAML names it all.
struct fake_host {
    temp_dir dir;
    const endpoint_servers& servers;
    watch_options options;
    std::filesystem::path config;

    explicit fake_host(const endpoint_servers& s, const std::string& watch_yaml,
                       const std::string& probe_timeout = "0.8")
        : servers(s) {
        write_agent_config(servers.endpoint(2).port());
        dir.write("ca.pem", servers.ca_pem());
        config = dir.path() / "ssm-doctor.yaml";
        write_config(watch_yaml, probe_timeout);

        options.config_file = config;
        options.host.hosts_file = dir.write(
            "hosts", "127.0.0.1 ssm.lab.test ssmmessages.lab.test ec2messages.lab.test\n");
        options.host.resolv_conf = dir.write("resolv.conf", "nameserver 127.0.0.1\n");
        options.host.proc_root = dir.path() / "proc";
        options.ask_package_managers = false;
        options.handle_signals = false;
        options.worker = SSM_DOCTOR_EXECUTABLE;  // this test is not ssm-doctor: name it

        const auto proc = options.host.proc_root;
        std::filesystem::create_directories(proc / "net");
        std::filesystem::create_directories(proc / "4242" / "fd");
        dir.write("proc/stat", "cpu  1 2 3 4\nbtime 1764000000\n");
        dir.write("proc/4242/stat",
                  "4242 (ssm-agent-worke) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 "
                  "9 0 5000 1000000 300 18446744073709551615\n");
        std::filesystem::create_symlink("/usr/bin/ssm-agent-worker", proc / "4242" / "exe");
        std::filesystem::create_symlink("socket:[777]", proc / "4242" / "fd" / "7");
        set_worker_session(true);
    }

    // ec2messages on its server, or on a port where nothing listens.
    void write_agent_config(unsigned short ec2messages_port) {
        const auto json = "{\"Ssm\": {\"Endpoint\": \"https://ssm.lab.test:" +
                          std::to_string(servers.endpoint(0).port()) +
                          "\"}, \"Mgs\": {\"Endpoint\": \"ssmmessages.lab.test:" +
                          std::to_string(servers.endpoint(1).port()) +
                          "\"}, \"Mds\": {\"Endpoint\": \"https://ec2messages.lab.test:" +
                          std::to_string(ec2messages_port) + "\"}}";
        replace("amazon-ssm-agent.json", json);
    }

    void write_config(const std::string& watch_yaml, const std::string& probe_timeout = "0.8") {
        const auto d = dir.path().string();
        replace("ssm-doctor.yaml",
                "region: us-east-1\n"
                "agent:\n"
                "  binary: " +
                    d +
                    "/no-agent-here\n"
                    "  config: " +
                    d +
                    "/amazon-ssm-agent.json\n"
                    "  log_dir: " +
                    d +
                    "/log\n"
                    "imds:\n"
                    "  endpoint: http://127.0.0.1:9\n"
                    "  timeout: 0.3\n"
                    "tls:\n"
                    "  ca_file: " +
                    d +
                    "/ca.pem\n"
                    "probe:\n"
                    "  timeout: " +
                    probe_timeout + "\n" + watch_yaml);
    }

    // The worker's connection to ssmmessages (socket inode 777), or an empty table.
    void set_worker_session(bool present) {
        std::string table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
            "   uid  timeout inode\n";
        if (present) {
            table += "   0: 0100007F:9C40 " + proc_net_v4(servers.endpoint(1)) +
                     " 01 00000000:00000000 00:00000000 00000000     0        0 777 1 "
                     "0000000000000000 20 4 30 10 -1\n";
        }
        replace("proc/net/tcp", table);
    }

    // Written beside and renamed over, so the loop never reads half a file.
    void replace(const std::string& name, const std::string& text) {
        dir.write(name + ".new", text);
        std::filesystem::rename(dir.path() / (name + ".new"), dir.path() / name);
    }
};

// Every line the loop logs, kept for the test to read while the loop runs.
class line_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::vector<std::string> lines() {
        const std::lock_guard lock(mutex_);
        return lines_;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        lines_.emplace_back(formatted.data(), formatted.size());
    }
    void flush_() override {}

private:
    std::vector<std::string> lines_;
};

// Makes spdlog's default logger write to a line_sink for the scope of a test.
class captured_log {
public:
    captured_log() : sink_(std::make_shared<line_sink>()), previous_(spdlog::default_logger()) {
        sink_->set_pattern("level=%l %v");
        auto logger = std::make_shared<spdlog::logger>("watch-test", sink_);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(std::move(logger));
    }
    ~captured_log() { spdlog::set_default_logger(previous_); }
    captured_log(const captured_log&) = delete;
    captured_log& operator=(const captured_log&) = delete;

    std::vector<std::string> lines() const { return sink_->lines(); }

    std::size_t count(const std::string& part) const {
        std::size_t n = 0;
        for (const auto& line : lines()) {
            n += line.find(part) != std::string::npos ? 1 : 0;
        }
        return n;
    }

    // The first line holding every one of `parts`, or "".
    std::string find(const std::vector<std::string>& parts) const {
        for (const auto& line : lines()) {
            bool all = true;
            for (const auto& part : parts) {
                all = all && line.find(part) != std::string::npos;
            }
            if (all) {
                return line;
            }
        }
        return "";
    }

    // On failure the log so far goes with the next assertion's message.
    bool wait_for(const std::vector<std::string>& parts, std::chrono::milliseconds limit) const {
        if (eventually([&] { return !find(parts).empty(); }, limit)) {
            return true;
        }
        UNSCOPED_INFO("the log so far:\n" << dump());
        return false;
    }

    std::string dump() const {
        std::string text;
        for (const auto& line : lines()) {
            text += line;
        }
        return text;
    }

private:
    std::shared_ptr<line_sink> sink_;
    std::shared_ptr<spdlog::logger> previous_;
};

class counting_observer : public watch_observer {
public:
    void on_check(const report& r) override {
        ++checks;
        last_findings = static_cast<int>(r.findings.size());
    }
    void on_session_change(const session_change& change) override {
        ++(change.opened ? opened : closed);
    }

    std::atomic<int> checks{0};
    std::atomic<int> opened{0};
    std::atomic<int> closed{0};
    std::atomic<int> last_findings{-1};
};

// The loop on a thread of its own; stopped and joined however the test ends.
class running_loop {
public:
    explicit running_loop(watch_options options) : loop_(std::move(options)) {
        thread_ = std::thread([this] {
            result_ = loop_.run();
            ended_ = true;
        });
    }
    ~running_loop() { stop(); }
    running_loop(const running_loop&) = delete;
    running_loop& operator=(const running_loop&) = delete;

    watch_loop& loop() { return loop_; }
    bool ended() const { return ended_; }

    // Asks for a stop and returns how long run() took to return.
    std::chrono::milliseconds stop() {
        const auto asked = steady::now();
        if (thread_.joinable()) {
            loop_.request_stop();
            thread_.join();
        }
        return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - asked);
    }

    // Joins a loop that was stopped some other way (a signal).
    void join() { thread_.join(); }

    const watch_result& result() const { return result_; }

private:
    watch_loop loop_;
    watch_result result_;
    std::atomic<bool> ended_{false};
    std::thread thread_;
};

const std::string fast_watch = "watch:\n  interval: 0.3\n  sample: 0.05\n  summary: 60\n";

}  // namespace

TEST_CASE("the watch logs the first verdict, then only changes of findings and sessions",
          "[watch][agent]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, fast_watch);
    temp_dir sockets;
    notify_listener systemd((sockets.path() / "notify").string());
    scoped_env notify_env("NOTIFY_SOCKET", (sockets.path() / "notify").string());
    captured_log log;
    counting_observer observer;
    host.options.observer = &observer;

    running_loop running(host.options);

    // Ready before the first check, with a status.
    REQUIRE(eventually([&] { return systemd.received("READY=1"); }, 2s));
    REQUIRE(log.wait_for({"event=watch_started", "interval_s=0.3", "sample_s=0.05"}, 1s));

    // The first check: the verdict once, then the worker's session from the first sample.
    REQUIRE(log.wait_for({"event=verdict_changed", "previous=-", "region=us-east-1"}, 3s));
    REQUIRE(
        log.wait_for({"event=session_opened", "service=ssmmessages", "host=ssmmessages.lab.test",
                      "pid=4242", "process=ssm-agent-worker", "local=127.0.0.1:40000",
                      "remote=127.0.0.1:" + std::to_string(servers.endpoint(1).port())},
                     2s));
    CHECK(eventually([&] { return systemd.received("STATUS=verdict "); }, 1s));

    // Several unchanged checks add no line.
    const auto raised_after_first = log.count("event=finding_raised");
    REQUIRE(eventually([&] { return observer.checks >= 4; }, 5s));
    CHECK(log.count("event=verdict_changed") == 1);
    CHECK(log.count("event=finding_raised") == raised_after_first);
    CHECK(log.count("event=session_opened") == 1);
    CHECK(log.count("event=check ") >= 4);  // debug: one per check

    SECTION("a dropped session and its return are logged as they happen") {
        host.set_worker_session(false);
        REQUIRE(log.wait_for({"event=session_closed", "service=ssmmessages", "pid=4242"}, 2s));
        host.set_worker_session(true);
        REQUIRE(eventually([&] { return log.count("event=session_opened") == 2; }, 2s));
        CHECK(observer.opened == 2);
        CHECK(observer.closed == 1);
    }
    SECTION("an endpoint that breaks raises a finding, and clears it when it works again") {
        host.write_agent_config(9);  // ec2messages now goes where nothing listens
        REQUIRE(log.wait_for({"event=finding_raised", "id=required_endpoint_unreachable",
                              "severity=critical", "service=ec2messages"},
                             3s));
        host.write_agent_config(servers.endpoint(2).port());
        REQUIRE(log.wait_for(
            {"event=finding_cleared", "id=required_endpoint_unreachable", "service=ec2messages"},
            3s));
        CHECK(log.count("event=finding_raised") == raised_after_first + 1);
    }

    const auto took = running.stop();
    CHECK(took < 1s);
    CHECK(running.result().exit_code == 0);
    CHECK(log.wait_for({"event=watch_stopped", "reason=request"}, 1s));
    CHECK(eventually([&] { return systemd.received("STOPPING=1"); }, 1s));
}

TEST_CASE("a summary is written while nothing changes", "[watch][agent]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, "watch:\n  interval: 0.2\n  sample: 0.05\n  summary: 0.5\n");
    captured_log log;
    running_loop running(host.options);

    REQUIRE(log.wait_for({"event=summary", "verdict=", "checks=", "samples=", "sessions=1"}, 3s));
    const auto line = log.find({"event=summary"});
    CHECK(line.find("verdict=-") == std::string::npos);  // a check has run by then
    CHECK(running.stop() < 1s);
}

TEST_CASE("a reload takes a good file and keeps the old configuration for a bad one",
          "[watch][config]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, fast_watch);
    temp_dir sockets;
    notify_listener systemd((sockets.path() / "notify").string());
    scoped_env notify_env("NOTIFY_SOCKET", (sockets.path() / "notify").string());
    captured_log log;
    counting_observer observer;
    host.options.observer = &observer;
    running_loop running(host.options);
    REQUIRE(eventually([&] { return observer.checks >= 1; }, 3s));

    SECTION("a good file applies at once") {
        host.write_config("watch:\n  interval: 0.4\n  sample: 0.07\n  summary: 30\n");
        running.loop().request_reload();
        REQUIRE(log.wait_for(
            {"event=config_reloaded", "interval_s=0.4", "sample_s=0.07", "summary_s=30"}, 2s));
        CHECK(systemd.received("RELOADING=1"));
        // READY=1 again after the reload.
        CHECK(eventually(
            [&] {
                bool reloading = false;
                for (const auto& m : systemd.messages()) {
                    if (m.rfind("RELOADING=1", 0) == 0) {
                        reloading = true;
                    } else if (reloading && m.rfind("READY=1", 0) == 0) {
                        return true;
                    }
                }
                return false;
            },
            1s));
    }
    SECTION("a bad file is refused with its line and key, and the watch goes on") {
        host.write_config("watch:\n  interval: soon\n");
        running.loop().request_reload();
        REQUIRE(log.wait_for({"level=warning", "event=config_rejected", "ssm-doctor.yaml",
                              "watch.interval", "kept=previous"},
                             2s));
        CHECK(log.count("event=config_reloaded") == 0);
        const int before = observer.checks;
        CHECK(eventually([&] { return observer.checks >= before + 2; }, 3s));
    }
    CHECK(running.stop() < 1s);
}

TEST_CASE("a stop during a check kills its worker and returns at once", "[watch][deadline]") {
    // Silent servers: every probe waits for its 2 s deadline.
    endpoint_servers servers(server_behaviour::silent);
    fake_host host(servers, fast_watch, "2");
    captured_log log;
    counting_observer observer;
    host.options.observer = &observer;
    running_loop running(host.options);
    REQUIRE(log.wait_for({"event=watch_started"}, 1s));
    REQUIRE(eventually([] { return checks_in_flight() == 1; }, 1s));
    std::this_thread::sleep_for(100ms);  // well inside the probes' 2 s

    const auto took = running.stop();
    CHECK(took < 200ms);
    CHECK(checks_in_flight() == 0);  // killed and reaped before run() returned
    CHECK(observer.checks == 0);
    CHECK(log.count("check_killed=true") == 1);
}

TEST_CASE("a stop between checks waits for nothing", "[watch][deadline]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, "watch:\n  interval: 60\n  sample: 0.05\n  summary: 60\n");
    captured_log log;
    counting_observer observer;
    host.options.observer = &observer;
    running_loop running(host.options);
    REQUIRE(eventually([&] { return observer.checks == 1 && checks_in_flight() == 0; }, 3s));
    CHECK(running.stop() < 200ms);
    CHECK(log.count("check_killed=false") == 1);
}

TEST_CASE("a worker that fails, hangs or answers nonsense is a failed check, said once",
          "[watch][deadline]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, "watch:\n  interval: 0.1\n  sample: 0.05\n  summary: 60\n");
    captured_log log;
    counting_observer observer;
    host.options.observer = &observer;
    host.options.worker_slack = 200ms;
    const auto script = [&](const std::string& body) {
        const auto path = host.dir.write("worker.sh", "#!/bin/sh\n" + body + "\n");
        std::filesystem::permissions(path, std::filesystem::perms::owner_all);
        return path;
    };
    std::string expected;
    SECTION("it ends with a status other than 0") {
        host.options.worker = script("exit 3");
        expected = "the check worker exited with status 3";
    }
    SECTION("it writes what is not JSON") {
        host.options.worker = script("echo 'this is not JSON'");
        expected = "the check worker's reply is not JSON";
    }
    SECTION("it says why it could not check") {
        host.options.worker = script("echo '{\"format\":1,\"error\":\"tls.ca_file: unusable\"}'");
        expected = "tls.ca_file: unusable";
    }
    SECTION("it runs past its deadline") {
        // imds.timeout 0.3 + probe.timeout 0.8 + slack 0.2: killed after 1.3 s.
        host.options.worker = script("exec sleep 30");
        expected = "the check worker was killed: still running 1.3 s after it started";
    }
    SECTION("it closes its stdout and runs on: the loop does not wait on it") {
        host.options.worker = script("exec 1>&-\nexec sleep 30");
        expected = "the check worker was killed: still running 1.3 s after it started";
    }
    SECTION("it cannot be started") {
        host.options.worker = host.dir.path() / "no-such-worker";
        expected = "cannot start";
    }
    running_loop running(host.options);
    REQUIRE(log.wait_for({"level=error", "event=check_failed", expected}, 4s));
    // The same error again is not logged again; the loop goes on checking.
    std::this_thread::sleep_for(400ms);
    CHECK(log.count("event=check_failed") == 1);
    CHECK(observer.checks == 0);
    CHECK(running.stop() < 200ms);
    CHECK(checks_in_flight() == 0);
}

TEST_CASE("the watchdog is pinged at half its interval, also during a check", "[watch][notify]") {
    endpoint_servers servers(server_behaviour::silent);
    fake_host host(servers, "watch:\n  interval: 0.2\n  sample: 0.05\n  summary: 60\n", "1");
    temp_dir sockets;
    notify_listener systemd((sockets.path() / "notify").string());
    scoped_env notify_env("NOTIFY_SOCKET", (sockets.path() / "notify").string());
    scoped_env watchdog_env("WATCHDOG_USEC", "200000");
    captured_log log;
    running_loop running(host.options);
    REQUIRE(log.wait_for({"event=watch_started", "watchdog_ms=200"}, 1s));

    // The first check takes about 1.3 s against silent servers; pings go on meanwhile.
    const auto pings = [&] {
        int n = 0;
        for (const auto& m : systemd.messages()) {
            n += m == "WATCHDOG=1" ? 1 : 0;
        }
        return n;
    };
    REQUIRE(eventually([] { return checks_in_flight() == 1; }, 1s));
    std::this_thread::sleep_for(700ms);
    CHECK(checks_in_flight() == 1);
    CHECK(pings() >= 4);  // every 100 ms: 7 expected, some slack for a busy machine
    running.stop();
    CHECK(eventually([] { return checks_in_flight() == 0; }, 3s));
}

TEST_CASE("SIGHUP reloads and SIGTERM stops when the loop handles signals", "[watch][agent]") {
    endpoint_servers servers(server_behaviour::tls);
    fake_host host(servers, fast_watch);
    host.options.handle_signals = true;
    temp_dir sockets;
    notify_listener systemd((sockets.path() / "notify").string());
    scoped_env notify_env("NOTIFY_SOCKET", (sockets.path() / "notify").string());
    captured_log log;
    running_loop running(host.options);
    // READY comes after the handlers are installed.
    REQUIRE(eventually([&] { return systemd.received("READY=1"); }, 2s));

    REQUIRE(::kill(::getpid(), SIGHUP) == 0);
    REQUIRE(log.wait_for({"event=config_reloaded"}, 2s));

    const auto asked = steady::now();
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
    REQUIRE(eventually([&] { return running.ended(); }, 1s));
    CHECK(steady::now() - asked < 1s);
    running.join();
    CHECK(log.count("reason=sigterm") == 1);
    CHECK(eventually([&] { return systemd.received("STOPPING=1"); }, 1s));
}

TEST_CASE("a configuration that cannot be loaded stops the watch before it starts", "[watch]") {
    temp_dir dir;
    watch_options options;
    options.handle_signals = false;
    SECTION("a named file that does not exist") {
        options.config_file = dir.path() / "missing.yaml";
        CHECK_THROWS_WITH(watch_loop(options), Catch::Contains("missing.yaml"));
    }
    SECTION("a bad value") {
        options.config_file = dir.write("bad.yaml", "watch:\n  sample: -1\n");
        CHECK_THROWS_WITH(watch_loop(options), Catch::Contains("watch.sample"));
    }
}
