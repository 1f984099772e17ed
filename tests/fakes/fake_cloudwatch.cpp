// SPDX-License-Identifier: Apache-2.0
// The child process that plays CloudWatch Logs and IMDS: started over a socket pair, asked
// questions one JSON line at a time, ended by its pid.
#include "tests/fakes/fake_cloudwatch.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ssm_doctor::testing {
namespace {

using steady_clock = std::chrono::steady_clock;

std::filesystem::path script_path() {
    return std::filesystem::path(__FILE__).parent_path() / "fake_cloudwatch_logs.py";
}

}  // namespace

fake_cloudwatch::fake_cloudwatch(const fake_cloudwatch_options& options) {
    // A CA the client is told to trust, and a server certificate for 127.0.0.1 and localhost.
    const auto ca = make_ca("ssm-doctor fake CloudWatch CA");
    auto spec = server_spec("localhost");
    spec.ip_addresses = {"127.0.0.1"};
    const auto server = make_server_certificate(ca, spec);
    ca_file_ = dir_.write("ca.pem", ca.cert_pem());
    const auto cert = dir_.write("server.pem", server.cert_pem());
    const auto key = dir_.write("server.key", server.key_pem());

    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
    }
    control_ = pair[0];

    // Debian's interpreter by default: it is the one that sees Debian's python3-botocore.
    const char* env_python = std::getenv("SSM_DOCTOR_PYTHON");
    const std::string python = env_python != nullptr ? env_python : "/usr/bin/python3";
    std::vector<std::string> args = {python,       script_path().string(),
                                     "--cert",     cert.string(),
                                     "--key",      key.string(),
                                     "--region",   options.region,
                                     "--lifetime", std::to_string(options.credentials_lifetime_s)};
    if (options.rotate_before_s) {
        args.push_back("--rotate-before");
        args.push_back(std::to_string(*options.rotate_before_s));
    }
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pair[1], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pair[1], STDOUT_FILENO);
    const int rc = posix_spawnp(&pid_, python.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pair[1]);
    if (rc != 0) {
        ::close(control_);
        throw std::runtime_error("cannot start " + python +
                                 " for the fake CloudWatch Logs: " + std::strerror(rc));
    }

    std::string first;
    try {
        first = read_line(std::chrono::seconds(20));
    } catch (const std::exception& e) {
        stop();
        throw std::runtime_error(std::string("the fake CloudWatch Logs did not start: ") +
                                 e.what());
    }
    const auto hello = nlohmann::json::parse(first, nullptr, false);
    if (!hello.is_object() || !hello.contains("logs_port")) {
        stop();
        throw std::runtime_error("the fake CloudWatch Logs did not start (" + python + " " +
                                 script_path().string() + "): " + first +
                                 " -- CI installs python3-botocore (scripts/install-deps.sh)");
    }
    logs_port_ = hello["logs_port"].get<std::uint16_t>();
    imds_port_ = hello["imds_port"].get<std::uint16_t>();
}

fake_cloudwatch::~fake_cloudwatch() {
    stop();
}

void fake_cloudwatch::stop() {
    if (control_ >= 0) {
        const std::string quit = "{\"cmd\": \"quit\"}\n";
        ::send(control_, quit.data(), quit.size(), MSG_NOSIGNAL);
        ::shutdown(control_, SHUT_WR);
    }
    if (pid_ > 0) {
        const auto give_up = steady_clock::now() + std::chrono::seconds(5);
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (steady_clock::now() >= give_up) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
    }
    if (control_ >= 0) {
        ::close(control_);
        control_ = -1;
    }
}

std::string fake_cloudwatch::imds_endpoint() const {
    return "http://127.0.0.1:" + std::to_string(imds_port_);
}

std::string fake_cloudwatch::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    while (true) {
        if (const auto end = buffered_.find('\n'); end != std::string::npos) {
            std::string line = buffered_.substr(0, end);
            buffered_.erase(0, end + 1);
            return line;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        if (left.count() <= 0) {
            throw std::runtime_error("no answer within " + std::to_string(timeout.count()) + " ms");
        }
        pollfd p{control_, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR) {
            throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
        }
        if (ready <= 0) {
            continue;
        }
        char chunk[65536];
        const ssize_t n = ::recv(control_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            throw std::runtime_error("the fake exited" +
                                     (buffered_.empty() ? std::string() : ": " + buffered_));
        }
        buffered_.append(chunk, static_cast<std::size_t>(n));
    }
}

nlohmann::json fake_cloudwatch::command(const nlohmann::json& request) {
    const std::string line = request.dump() + "\n";
    std::size_t sent = 0;
    while (sent < line.size()) {
        const ssize_t n = ::send(control_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            throw std::runtime_error("the fake CloudWatch Logs is gone");
        }
        sent += static_cast<std::size_t>(n);
    }
    auto answer = nlohmann::json::parse(read_line(std::chrono::seconds(10)));
    if (answer.contains("error")) {
        throw std::runtime_error("fake CloudWatch Logs: " + answer["error"].get<std::string>());
    }
    return answer;
}

std::vector<received_event> fake_cloudwatch::events() {
    std::vector<received_event> out;
    const auto answer = command({{"cmd", "events"}});  // kept alive for the loop
    for (const auto& e : answer["events"]) {
        out.push_back(received_event{e["group"].get<std::string>(), e["stream"].get<std::string>(),
                                     e["timestamp"].get<std::int64_t>(),
                                     e["message"].get<std::string>()});
    }
    return out;
}

std::vector<std::string> fake_cloudwatch::secrets() {
    return command({{"cmd", "secrets"}})["secrets"].get<std::vector<std::string>>();
}

}  // namespace ssm_doctor::testing
