// SPDX-License-Identifier: Apache-2.0
// The watch daemon's check worker: `ssm-doctor _observe`, a process of its own per check.
//
// Why a process: a check maps most of OpenSSL (the handshakes, the trust store) and allocates a
// few MiB; in the daemon those pages would stay resident between checks, five minutes apart. In a
// worker they go when it exits, so the daemon's own memory is what sampling needs (see
// docs/benchmarks.md). It also makes a check that must end early (a stop, a hang past its
// deadline) a process to kill, with nothing left behind.
//
// The protocol, both ends being the same executable: the daemon writes one request as JSON to
// the worker's stdin and closes it; the worker runs one check (run_check) and writes one reply
// line to stdout: the observations (observations_codec.hpp), or {"format":1,"error":"..."} when
// the check could not run at all (an unusable tls.ca_file). The verdict stays in the daemon.
#pragma once

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/check.hpp"
#include "agent/observations.hpp"

namespace ssm_doctor {

struct worker_request {
    std::string config_text;    // the YAML the daemon loaded, so a file edited since the last
    std::string config_source;  // reload does not apply before SIGHUP; its path, for messages
    host_paths host;
    bool ask_package_managers = true;
};

std::string encode_worker_request(const worker_request& request);
worker_request decode_worker_request(std::string_view text);  // throws codec_error

// What the worker could not do: the reply's error, or a reply that is not one.
class worker_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The observations in a worker's reply; throws worker_error.
observations decode_worker_reply(std::string_view text);

// `ssm-doctor _observe`: reads the request from `in` until EOF, runs the check, writes the reply
// to `out`. Returns 0 when a reply was written (also an error reply), 1 for a bad request.
int run_check_worker(std::istream& in, std::ostream& out);

}  // namespace ssm_doctor
