// SPDX-License-Identifier: Apache-2.0
// The TCP+TLS probe: connect, an optional proxy CONNECT, a handshake whose verification errors
// are recorded instead of aborting it, and a description of the certificate the server showed.
#include "probes/tls_probe.hpp"

#include <utility>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using steady_clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// The longest proxy reply head we read; a CONNECT reply is a status line and a few headers.
constexpr std::size_t max_proxy_reply_head = 8192;
// Text taken from the network is cut to this many characters before it goes into a detail.
constexpr std::size_t max_quoted_text = 200;

struct bio_deleter {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct x509_deleter {
    void operator()(X509* cert) const { X509_free(cert); }
};
struct general_names_deleter {
    void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, general_names_deleter>;

std::chrono::milliseconds since(steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start);
}

// Drains OpenSSL's error queue of this thread into one line, so no stale entry is left behind
// to be blamed on a later call.
std::string drain_openssl_errors() {
    std::string text;
    while (unsigned long code = ERR_get_error()) {
        if (!text.empty()) {
            text += "; ";
        }
        // OpenSSL 3 packs errno into system errors and has no reason string of its own for them.
        const char* reason = ERR_SYSTEM_ERROR(code) ? std::strerror(ERR_GET_REASON(code))
                                                    : ERR_reason_error_string(code);
        text += reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
    }
    return text.empty() ? std::string("no reason given by OpenSSL") : text;
}

// Bytes from a peer made safe to show: printable ASCII only, and short.
std::string quote_peer_text(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, max_quoted_text)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    if (text.size() > max_quoted_text) {
        out += "...";
    }
    return out;
}

std::string first_line(std::string_view text) {
    return std::string(text.substr(0, text.find_first_of("\r\n")));
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    const std::string host =
        address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return host + ":" + std::to_string(endpoint.port());
}

// A host name or address literal fit for SNI and a CONNECT line: no spaces, no control bytes
// (which could smuggle headers into the proxy request), not empty.
bool usable_host(std::string_view host) {
    return !host.empty() && host.size() <= 255 &&
           std::all_of(host.begin(), host.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// host:port as a CONNECT request names it; an IPv6 literal goes in brackets.
std::string authority(const tls_target& target) {
    const bool bare_v6 = target.host.find(':') != std::string::npos && target.host.front() != '[';
    const std::string host = bare_v6 ? "[" + target.host + "]" : target.host;
    return host + ":" + std::to_string(target.port);
}

failure_reason connect_reason(const error_code& ec) {
    if (ec == asio::error::connection_refused) {
        return failure_reason::refused;
    }
    if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable) {
        return failure_reason::unreachable;
    }
    if (ec == asio::error::connection_reset) {
        return failure_reason::reset;
    }
    if (ec == asio::error::timed_out) {
        return failure_reason::timeout;  // the kernel gave up retrying SYNs before our deadline
    }
    return failure_reason::other;
}

// Whether an error means the peer went away (RST or EOF) rather than that it said something.
bool is_peer_gone(const error_code& ec) {
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::error::eof || ec == ssl::error::stream_truncated) {
        return true;
    }
    // OpenSSL 3 reports a TCP EOF inside the handshake as an SSL error of its own.
    if (ec.category() == asio::error::get_ssl_category()) {
        const auto code = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
        return ERR_GET_LIB(code) == ERR_LIB_SSL &&
               ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
    }
    return false;
}

// What the verify callback saw: the first verification error and the leaf certificate.
struct verify_record {
    std::optional<std::string> error;  // OpenSSL's reason, depth and the certificate it concerns
    x509_ptr leaf;                     // kept for the details when the handshake fails later
};

std::string name_text(const X509_NAME* name) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || name == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
        return {};
    }
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return length > 0 ? std::string(data, static_cast<std::size_t>(length)) : std::string();
}

std::vector<std::string> subject_alt_names(X509* cert) {
    std::vector<std::string> out;
    general_names_ptr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (!names) {
        return out;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type == GEN_DNS) {
            const ASN1_IA5STRING* dns = name->d.dNSName;
            const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns));
            out.push_back(quote_peer_text(
                std::string_view(data, static_cast<std::size_t>(ASN1_STRING_length(dns)))));
        } else if (name->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* ip = name->d.iPAddress;
            const unsigned char* bytes = ASN1_STRING_get0_data(ip);
            if (ASN1_STRING_length(ip) == 4) {
                asio::ip::address_v4::bytes_type v4;
                std::copy(bytes, bytes + 4, v4.begin());
                out.push_back(asio::ip::address_v4(v4).to_string());
            } else if (ASN1_STRING_length(ip) == 16) {
                asio::ip::address_v6::bytes_type v6;
                std::copy(bytes, bytes + 16, v6.begin());
                out.push_back(asio::ip::address_v6(v6).to_string());
            }
        }
    }
    return out;
}

void describe_certificate(X509* cert, tls_details& details) {
    details.subject = name_text(X509_get_subject_name(cert));
    details.issuer = name_text(X509_get_issuer_name(cert));
    details.subject_alt_names = subject_alt_names(cert);
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
        details.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
    }
}

// Names what the server is checked against: SNI and host name for a DNS name, the IP address
// (and no SNI, which must not carry literals) for an address. Returns an error text on failure.
std::optional<std::string> set_expected_peer(SSL* ssl, const std::string& host) {
    error_code not_an_address;
    asio::ip::make_address(host, not_an_address);
    ERR_clear_error();
    if (!not_an_address) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
            return "cannot expect IP address " + host + ": " + drain_openssl_errors();
        }
        return std::nullopt;
    }
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
        return "cannot set SNI to " + quote_peer_text(host) + ": " + drain_openssl_errors();
    }
    if (SSL_set1_host(ssl, host.c_str()) != 1) {
        return "cannot expect host name " + quote_peer_text(host) + ": " + drain_openssl_errors();
    }
    return std::nullopt;
}

}  // namespace

std::optional<int> parse_proxy_status(std::string_view reply_head) {
    const std::string_view line = reply_head.substr(0, reply_head.find_first_of("\r\n"));
    // "HTTP/1.x SSS" then the end of the line or a space and a reason phrase.
    constexpr std::string_view prefix = "HTTP/1.";
    if (line.size() < 12 || line.substr(0, prefix.size()) != prefix || line[7] < '0' ||
        line[7] > '9' || line[8] != ' ') {
        return std::nullopt;
    }
    if (line.size() > 12 && line[12] != ' ') {
        return std::nullopt;
    }
    int status = 0;
    const char* begin = line.data() + 9;
    const char* end = begin + 3;
    const auto [stop, error] = std::from_chars(begin, end, status);
    if (error != std::errc() || stop != end || status < 100) {
        return std::nullopt;
    }
    return status;
}

std::shared_ptr<ssl::context> make_tls_client_context(
    const std::optional<std::filesystem::path>& ca_file) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = context->native_handle();
    ERR_clear_error();
    // The agent's Go TLS stack accepts 1.2 and 1.3; a server offering less must fail here too.
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        throw std::runtime_error("cannot require TLS 1.2 or later: " + drain_openssl_errors());
    }
    context->set_verify_mode(ssl::verify_peer);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(native, ca_file->c_str(), nullptr) != 1) {
            throw std::runtime_error("cannot load CA certificates from " + ca_file->string() +
                                     ": " + drain_openssl_errors());
        }
    } else {
        error_code ec;
        context->set_default_verify_paths(ec);
        if (ec) {
            throw std::runtime_error("cannot load the system's default CA certificates: " +
                                     ec.message());
        }
    }
    return context;
}

asio::awaitable<tls_probe_result> probe_tls(asio::any_io_executor executor, tls_target target,
                                            std::shared_ptr<ssl::context> context,
                                            steady_time deadline) {
    tls_probe_result result;
    auto fail = [&result](probe_phase phase, failure_reason reason, std::string detail) {
        result.failure = probe_failure{phase, reason, std::move(detail)};
        return result;
    };
    const std::string where = endpoint_text(target.address);

    if (!usable_host(target.host)) {
        co_return fail(probe_phase::connect, failure_reason::other,
                       "not a usable host name: \"" + quote_peer_text(target.host) + "\"");
    }
    // A deadline already past lets no phase begin; otherwise a fast loopback connect could
    // finish before the timer's handler runs and the timeout would be blamed on a later phase.
    if (steady_clock::now() >= deadline) {
        co_return fail(probe_phase::connect, failure_reason::timeout,
                       "the deadline passed before connecting to " + where);
    }

    // Declared before the stream: the verify callback refers to it while the stream lives.
    verify_record verify;
    ssl::stream<tcp::socket> stream(executor, *context);
    tcp::socket& socket = stream.next_layer();
    error_code ec;

    // Opened before the guard is armed, so an expiry can never find a socket not yet open and
    // let a connect start after the deadline.
    socket.open(target.address.protocol(), ec);
    if (ec) {
        co_return fail(probe_phase::connect, failure_reason::other,
                       "cannot open a socket for " + where + ": " + ec.message());
    }
    // Closing the socket ends whatever read, write, connect or handshake is pending.
    deadline_guard guard(executor, deadline, [&socket] {
        error_code ignored;
        socket.close(ignored);
    });
    auto on_error = asio::redirect_error(asio::use_awaitable, ec);

    // Step 1: TCP connect, to the endpoint or to the proxy.
    auto start = steady_clock::now();
    co_await socket.async_connect(target.address, on_error);
    if (ec) {
        if (guard.expired()) {
            co_return fail(probe_phase::connect, failure_reason::timeout,
                           "no TCP connection to " + where + " before the deadline");
        }
        co_return fail(probe_phase::connect, connect_reason(ec),
                       "connect to " + where + ": " + ec.message());
    }
    result.connect_ms = since(start);

    // Step 2: ask the proxy for a tunnel to host:port; only a 2xx reply opens it.
    if (target.via_proxy) {
        start = steady_clock::now();
        const std::string tunnel = authority(target);
        const std::string request =
            "CONNECT " + tunnel + " HTTP/1.1\r\nHost: " + tunnel + "\r\n\r\n";
        co_await asio::async_write(socket, asio::buffer(request), on_error);
        std::string head;
        std::size_t head_size = 0;
        if (!ec) {
            head_size = co_await asio::async_read_until(
                socket, asio::dynamic_buffer(head, max_proxy_reply_head), "\r\n\r\n", on_error);
        }
        if (ec) {
            if (guard.expired()) {
                co_return fail(probe_phase::proxy, failure_reason::timeout,
                               "proxy " + where + " did not answer CONNECT " + tunnel +
                                   " before the deadline");
            }
            if (ec == asio::error::not_found) {
                co_return fail(probe_phase::proxy, failure_reason::http_error,
                               "proxy " + where + " sent a reply head longer than " +
                                   std::to_string(max_proxy_reply_head) + " bytes");
            }
            if (is_peer_gone(ec)) {
                co_return fail(probe_phase::proxy, failure_reason::reset,
                               "proxy " + where + " closed the connection during CONNECT " +
                                   tunnel + ": " + ec.message());
            }
            co_return fail(probe_phase::proxy, failure_reason::other,
                           "CONNECT through proxy " + where + ": " + ec.message());
        }
        const auto status = parse_proxy_status(head);
        if (!status) {
            co_return fail(probe_phase::proxy, failure_reason::http_error,
                           "proxy " + where + " answered CONNECT with something not HTTP: \"" +
                               quote_peer_text(first_line(head)) + "\"");
        }
        if (*status < 200 || *status > 299) {
            co_return fail(probe_phase::proxy, failure_reason::proxy_refused,
                           "proxy " + where + " answered CONNECT " + tunnel + " with \"" +
                               quote_peer_text(first_line(head)) + "\"");
        }
        // A TLS server never speaks first, so bytes after the head mean a confused proxy.
        if (head.size() > head_size) {
            co_return fail(probe_phase::proxy, failure_reason::http_error,
                           "proxy " + where + " sent " + std::to_string(head.size() - head_size) +
                               " bytes after its CONNECT reply, before the TLS handshake");
        }
        result.proxy_ms = since(start);
    }

    // Step 3: the handshake. Verification errors are recorded by the callback and the handshake
    // goes on, so the certificate of, say, an intercepting proxy can still be described.
    start = steady_clock::now();
    SSL* native = stream.native_handle();
    if (auto problem = set_expected_peer(native, target.host)) {
        co_return fail(probe_phase::tls, failure_reason::other, std::move(*problem));
    }
    stream.set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
        stream.set_verify_callback(
            [&verify](bool preverified, ssl::verify_context& context) {
                X509_STORE_CTX* store = context.native_handle();
                const int depth = X509_STORE_CTX_get_error_depth(store);
                X509* cert = X509_STORE_CTX_get_current_cert(store);
                if (depth == 0 && cert != nullptr && !verify.leaf && X509_up_ref(cert) == 1) {
                    verify.leaf.reset(cert);
                }
                if (!preverified && !verify.error) {
                    const int code = X509_STORE_CTX_get_error(store);
                    std::string text = X509_verify_cert_error_string(code);
                    text += " (depth " + std::to_string(depth);
                    if (cert != nullptr) {
                        text += ", certificate " + name_text(X509_get_subject_name(cert));
                    }
                    verify.error = text + ")";
                }
                return true;
            },
            ec);
    }
    if (ec) {
        co_return fail(probe_phase::tls, failure_reason::other,
                       "cannot set up certificate verification: " + ec.message());
    }
    co_await stream.async_handshake(ssl::stream_base::client, on_error);
    ERR_clear_error();  // Asio took the reason it reports; drop what else OpenSSL queued

    if (ec) {
        if (verify.leaf) {
            tls_details seen;
            describe_certificate(verify.leaf.get(), seen);
            result.tls = std::move(seen);
        }
        if (guard.expired()) {
            co_return fail(probe_phase::tls, failure_reason::timeout,
                           "no TLS handshake with " + where + " before the deadline");
        }
        std::string detail = ec.message();
        if (verify.error) {
            detail += "; the certificate also failed verification: " + *verify.error;
        }
        if (is_peer_gone(ec)) {
            co_return fail(
                probe_phase::tls, failure_reason::reset,
                "connection to " + where + " ended during the TLS handshake: " + std::move(detail));
        }
        co_return fail(probe_phase::tls, failure_reason::tls_handshake_failed, std::move(detail));
    }
    result.tls_ms = since(start);

    // Step 4: describe what was negotiated and presented.
    tls_details details;
    details.version = SSL_get_version(native);
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(native)) {
        details.cipher = SSL_CIPHER_get_name(cipher);
    }
    x509_ptr leaf(SSL_get1_peer_certificate(native));
    if (!leaf) {
        leaf = std::move(verify.leaf);
    }
    if (leaf) {
        describe_certificate(leaf.get(), details);
    }
    result.tls = std::move(details);

    // Step 5: close without close_notify; waiting for the peer's would let it hold us.
    socket.close(ec);

    if (verify.error) {
        co_return fail(probe_phase::tls, failure_reason::tls_verify_failed,
                       std::move(*verify.error));
    }
    if (!leaf) {
        co_return fail(probe_phase::tls, failure_reason::tls_verify_failed,
                       "the server presented no certificate");
    }
    if (const long verdict = SSL_get_verify_result(native); verdict != X509_V_OK) {
        co_return fail(probe_phase::tls, failure_reason::tls_verify_failed,
                       X509_verify_cert_error_string(verdict));
    }
    result.ok = true;
    co_return result;
}

}  // namespace ssm_doctor
