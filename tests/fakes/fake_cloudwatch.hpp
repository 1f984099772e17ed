// SPDX-License-Identifier: Apache-2.0
// Runs tests/fakes/fake_cloudwatch_logs.py (CloudWatch Logs over HTTPS and an IMDS, on loopback)
// as a child process and talks to it, for the shipping tests and the benchmark.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "tests/support/test_certs.hpp"

namespace ssm_doctor::testing {

struct fake_cloudwatch_options {
    std::string region = "us-east-1";
    double credentials_lifetime_s = 3600;   // what IMDS hands out lives this long
    std::optional<double> rotate_before_s;  // IMDS rotates with less than this left
};

struct received_event {
    std::string group;
    std::string stream;
    std::int64_t timestamp_ms = 0;
    std::string message;
};

// The interpreter is $SSM_DOCTOR_PYTHON or `python3`. Construction throws std::runtime_error
// with the fake's own words when it cannot start (python3-botocore missing, for one): the tests
// then fail, they never skip. The destructor ends the child (quit, then SIGKILL by its pid).
class fake_cloudwatch {
public:
    explicit fake_cloudwatch(const fake_cloudwatch_options& options = {});
    ~fake_cloudwatch();
    fake_cloudwatch(const fake_cloudwatch&) = delete;
    fake_cloudwatch& operator=(const fake_cloudwatch&) = delete;

    std::uint16_t logs_port() const { return logs_port_; }
    std::string imds_endpoint() const;                                 // http://127.0.0.1:port
    const std::filesystem::path& ca_file() const { return ca_file_; }  // trusts the fake's cert

    // One control command and its answer; throws when the fake does not answer in 10 s.
    nlohmann::json command(const nlohmann::json& request);

    std::vector<received_event> events();
    nlohmann::json stats() { return command({{"cmd", "stats"}}); }
    // Every secret key and session token IMDS handed out so far.
    std::vector<std::string> secrets();

private:
    std::string read_line(std::chrono::milliseconds timeout);
    void stop();  // ends the child and closes the socket; safe to call twice

    temp_dir dir_;
    std::filesystem::path ca_file_;
    pid_t pid_ = -1;
    int control_ = -1;  // our end of the socket pair that is the child's stdin and stdout
    std::string buffered_;
    std::uint16_t logs_port_ = 0;
    std::uint16_t imds_port_ = 0;
};

}  // namespace ssm_doctor::testing
