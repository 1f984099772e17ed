// SPDX-License-Identifier: Apache-2.0
// How a probe records that a step failed: the phase, a stable reason and the system's own words.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ssm_doctor {

// The step of a network probe that failed. `proxy` is the HTTP CONNECT exchange with a proxy.
enum class probe_phase { dns, connect, proxy, tls, http };

// Stable reasons; their snake_case names are part of the JSON and log interface.
enum class failure_reason {
    nxdomain,              // the name does not exist (rcode 3)
    no_address,            // the name exists but has no A or AAAA record
    servfail,              // the resolver answered SERVFAIL or REFUSED
    dns_timeout,           // no resolver answered before the deadline
    dns_error,             // no resolver configured, malformed answers, socket errors
    timeout,               // connect, proxy or TLS step still pending at the deadline
    refused,               // ECONNREFUSED
    unreachable,           // ENETUNREACH, EHOSTUNREACH
    reset,                 // ECONNRESET or EOF during the handshake
    proxy_refused,         // the proxy answered CONNECT with a status other than 2xx
    tls_verify_failed,     // chain or host-name verification failed; detail holds OpenSSL's reason
    tls_handshake_failed,  // any other handshake failure (protocol version, alert, ...)
    http_error,            // malformed or unexpected HTTP answer
    other,
};

std::string_view to_string(probe_phase phase);
std::string_view to_string(failure_reason reason);

struct probe_failure {
    probe_phase phase;
    failure_reason reason;
    std::string detail;  // the system's or library's own text, for people
};

}  // namespace ssm_doctor
