// SPDX-License-Identifier: Apache-2.0
// Names of probe phases and failure reasons as they appear in JSON and logs.
#include "probes/failure.hpp"

namespace ssm_doctor {

std::string_view to_string(probe_phase phase) {
    switch (phase) {
        case probe_phase::dns:
            return "dns";
        case probe_phase::connect:
            return "connect";
        case probe_phase::proxy:
            return "proxy";
        case probe_phase::tls:
            return "tls";
        case probe_phase::http:
            return "http";
    }
    return "unknown";
}

std::string_view to_string(failure_reason reason) {
    switch (reason) {
        case failure_reason::nxdomain:
            return "nxdomain";
        case failure_reason::no_address:
            return "no_address";
        case failure_reason::servfail:
            return "servfail";
        case failure_reason::dns_timeout:
            return "dns_timeout";
        case failure_reason::dns_error:
            return "dns_error";
        case failure_reason::timeout:
            return "timeout";
        case failure_reason::refused:
            return "refused";
        case failure_reason::unreachable:
            return "unreachable";
        case failure_reason::reset:
            return "reset";
        case failure_reason::proxy_refused:
            return "proxy_refused";
        case failure_reason::tls_verify_failed:
            return "tls_verify_failed";
        case failure_reason::tls_handshake_failed:
            return "tls_handshake_failed";
        case failure_reason::http_error:
            return "http_error";
        case failure_reason::other:
            return "other";
    }
    return "other";
}

}  // namespace ssm_doctor
