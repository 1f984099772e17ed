// SPDX-License-Identifier: Apache-2.0
// Tests of the TCP+TLS probe against loopback servers with certificates made at test time.
#include <utility>

#include <chrono>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <catch2/catch.hpp>
#include <openssl/ssl.h>

#include "probes/tls_probe.hpp"
#include "tests/support/loopback_servers.hpp"
#include "tests/support/test_certs.hpp"

namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace ssm_doctor;
using namespace ssm_doctor::testing;

const std::string endpoint_host = "ssm.test-region-1.amazonaws.com";
constexpr auto probe_budget = 3s;       // deadline for probes that should finish at once
constexpr auto short_deadline = 300ms;  // deadline for probes that must time out
constexpr auto deadline_margin = 1500ms;

// The test PKI, made once per run: a trusted CA written to a file the client trusts, and a CA
// nobody trusts.
struct test_pki {
    temp_dir dir;
    test_identity ca = make_ca("ssm-doctor Test Root CA");
    test_identity stranger_ca = make_ca("Untrusted Interception CA");
    std::filesystem::path ca_file = dir.write("ca.pem", ca.cert_pem());
    std::shared_ptr<ssl::context> client = make_tls_client_context(ca_file);
};

test_pki& pki() {
    static test_pki instance;
    return instance;
}

struct probe_run {
    tls_probe_result result;
    std::chrono::milliseconds elapsed{0};
};

// Runs one probe on `io` and then `stop` (which stops the servers), so run() returns once the
// probe and the servers are done; run_for bounds the test even if something hangs.
probe_run run_probe(asio::io_context& io, const tls_target& target,
                    std::chrono::milliseconds budget, const std::function<void()>& stop,
                    std::shared_ptr<ssl::context> client = pki().client) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<probe_run> run;
    std::exception_ptr error;
    asio::co_spawn(io, probe_tls(io.get_executor(), target, std::move(client), start + budget),
                   [&](std::exception_ptr e, tls_probe_result result) {
                       error = e;
                       run = probe_run{std::move(result),
                                       std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)};
                       stop();
                   });
    io.run_for(budget + 5s);
    REQUIRE_FALSE(error);
    REQUIRE(run);
    return *run;
}

tls_target direct_target(const tcp::endpoint& address, const std::string& host = endpoint_host) {
    return tls_target{host, address.port(), address, false};
}

void require_failure(const tls_probe_result& result, probe_phase phase, failure_reason reason) {
    INFO("detail: " << (result.failure ? result.failure->detail : "(no failure)"));
    CHECK_FALSE(result.ok);
    REQUIRE(result.failure);
    CHECK(to_string(result.failure->phase) == to_string(phase));
    CHECK(to_string(result.failure->reason) == to_string(reason));
}

// The result of a probe of a TLS server presenting `identity` (with its CA's certificate).
probe_run probe_tls_server(const test_identity& identity, const std::string& host = endpoint_host,
                           std::shared_ptr<ssl::context> context = nullptr) {
    asio::io_context io;
    loopback_tls_server server(io, server_behaviour::tls,
                               context ? std::move(context) : make_tls_server_context(identity));
    return run_probe(io, direct_target(server.endpoint(), host), probe_budget,
                     [&] { server.stop(); });
}

}  // namespace

TEST_CASE("The proxy's status line is read from HTTP/1.x reply heads only", "[tls]") {
    SECTION("a 200 with a reason phrase") {
        CHECK(parse_proxy_status("HTTP/1.1 200 Connection established\r\n\r\n") == 200);
    }
    SECTION("HTTP/1.0 and no reason phrase") {
        CHECK(parse_proxy_status("HTTP/1.0 407\r\n\r\n") == 407);
    }
    SECTION("bare newlines end the line too") {
        CHECK(parse_proxy_status("HTTP/1.1 403 Forbidden\nVia: squid\n\n") == 403);
    }
    SECTION("not HTTP at all") {
        CHECK_FALSE(parse_proxy_status("SSH-2.0-OpenSSH_9.2\r\n\r\n"));
        CHECK_FALSE(parse_proxy_status(""));
        CHECK_FALSE(parse_proxy_status("\r\n\r\n"));
    }
    SECTION("malformed status codes") {
        CHECK_FALSE(parse_proxy_status("HTTP/1.1 2000 OK\r\n"));
        CHECK_FALSE(parse_proxy_status("HTTP/1.1 20 OK\r\n"));
        CHECK_FALSE(parse_proxy_status("HTTP/1.1 2x0 OK\r\n"));
        CHECK_FALSE(parse_proxy_status("HTTP/1.1 099 Low\r\n"));
        CHECK_FALSE(parse_proxy_status("HTTP/1.1  200 OK\r\n"));
        CHECK_FALSE(parse_proxy_status("HTTP/2 200\r\n"));
        CHECK_FALSE(parse_proxy_status("http/1.1 200 OK\r\n"));
    }
}

TEST_CASE("The client context trusts only the given CA file and names a file it cannot load",
          "[tls]") {
    temp_dir dir;
    SECTION("a missing file") {
        const auto missing = dir.path() / "missing.pem";
        CHECK_THROWS_WITH(make_tls_client_context(missing), Catch::Contains(missing.string()));
    }
    SECTION("a file without certificates") {
        const auto junk = dir.write("junk.pem", "this is not a certificate\n");
        CHECK_THROWS_WITH(make_tls_client_context(junk), Catch::Contains(junk.string()));
    }
    SECTION("no file: the system's trust store") {
        CHECK_NOTHROW(make_tls_client_context(std::nullopt));
    }
    SECTION("a PEM file with a CA certificate") {
        auto context = make_tls_client_context(dir.write("ca.pem", pki().ca.cert_pem()));
        REQUIRE(context);
        CHECK(SSL_CTX_get_min_proto_version(context->native_handle()) == TLS1_2_VERSION);
        CHECK(SSL_CTX_get_verify_mode(context->native_handle()) == SSL_VERIFY_PEER);
    }
}

TEST_CASE("A server with a good certificate for the endpoint name passes and is described",
          "[tls]") {
    const certificate_spec spec = server_spec(endpoint_host);
    const test_identity identity = make_server_certificate(pki().ca, spec);

    SECTION("with the newest TLS both sides speak") {
        const probe_run run = probe_tls_server(identity);
        INFO("detail: " << (run.result.failure ? run.result.failure->detail : ""));
        REQUIRE(run.result.ok);
        CHECK_FALSE(run.result.failure);
        CHECK(run.result.connect_ms);
        CHECK_FALSE(run.result.proxy_ms);
        CHECK(run.result.tls_ms);
        REQUIRE(run.result.tls);
        const tls_details& tls = *run.result.tls;
        CHECK(tls.version == "TLSv1.3");
        CHECK_FALSE(tls.cipher.empty());
        CHECK(tls.subject == "CN=" + endpoint_host);
        CHECK(tls.issuer == "CN=ssm-doctor Test Root CA");
        CHECK(tls.subject_alt_names == std::vector<std::string>{endpoint_host});
        REQUIRE(tls.not_after);
        CHECK(*tls.not_after == spec.not_after);
    }
    SECTION("with a server that stops at TLS 1.2") {
        auto context = make_tls_server_context(identity);
        REQUIRE(SSL_CTX_set_max_proto_version(context->native_handle(), TLS1_2_VERSION) == 1);
        const probe_run run = probe_tls_server(identity, endpoint_host, context);
        REQUIRE(run.result.ok);
        REQUIRE(run.result.tls);
        CHECK(run.result.tls->version == "TLSv1.2");
        CHECK_FALSE(run.result.tls->cipher.empty());
    }
}

TEST_CASE("A certificate for an IP address is checked against the address, not a name", "[tls]") {
    certificate_spec spec = server_spec("127.0.0.1");
    spec.dns_names.clear();
    spec.ip_addresses = {"127.0.0.1", "::1"};
    const test_identity identity = make_server_certificate(pki().ca, spec);

    SECTION("the address is in the certificate") {
        const probe_run run = probe_tls_server(identity, "127.0.0.1");
        INFO("detail: " << (run.result.failure ? run.result.failure->detail : ""));
        CHECK(run.result.ok);
        REQUIRE(run.result.tls);
        CHECK(run.result.tls->subject_alt_names == std::vector<std::string>{"127.0.0.1", "::1"});
    }
    SECTION("another address is not") {
        const probe_run run = probe_tls_server(identity, "127.0.0.2");
        require_failure(run.result, probe_phase::tls, failure_reason::tls_verify_failed);
        CHECK_THAT(run.result.failure->detail, Catch::Contains("IP address mismatch"));
    }
}

TEST_CASE("A certificate for another host name fails verification but is still described",
          "[tls]") {
    const test_identity identity =
        make_server_certificate(pki().ca, server_spec("www.example.invalid"));
    const probe_run run = probe_tls_server(identity);
    require_failure(run.result, probe_phase::tls, failure_reason::tls_verify_failed);
    CHECK_THAT(run.result.failure->detail, Catch::Contains("hostname mismatch"));
    CHECK_THAT(run.result.failure->detail, Catch::Contains("CN=www.example.invalid"));
    CHECK(run.result.tls_ms);
    REQUIRE(run.result.tls);
    CHECK(run.result.tls->subject == "CN=www.example.invalid");
    CHECK(run.result.tls->subject_alt_names == std::vector<std::string>{"www.example.invalid"});
}

TEST_CASE("An expired certificate fails verification with OpenSSL's reason", "[tls]") {
    certificate_spec spec = server_spec(endpoint_host);
    const auto now =
        std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    spec.not_before = now - std::chrono::hours(24 * 60);
    spec.not_after = now - std::chrono::hours(24);
    const probe_run run = probe_tls_server(make_server_certificate(pki().ca, spec));
    require_failure(run.result, probe_phase::tls, failure_reason::tls_verify_failed);
    CHECK_THAT(run.result.failure->detail, Catch::Contains("certificate has expired"));
    REQUIRE(run.result.tls);
    REQUIRE(run.result.tls->not_after);
    CHECK(*run.result.tls->not_after == spec.not_after);
}

TEST_CASE("A certificate from an untrusted CA fails verification and names that issuer", "[tls]") {
    const probe_run run =
        probe_tls_server(make_server_certificate(pki().stranger_ca, server_spec(endpoint_host)));
    require_failure(run.result, probe_phase::tls, failure_reason::tls_verify_failed);
    CHECK_THAT(run.result.failure->detail, Catch::Contains("unable to get local issuer"));
    REQUIRE(run.result.tls);
    CHECK(run.result.tls->issuer == "CN=Untrusted Interception CA");
    CHECK(run.result.tls->subject == "CN=" + endpoint_host);
}

TEST_CASE("A server offering only TLS 1.0 fails the handshake with OpenSSL's reason", "[tls]") {
    const test_identity identity = make_server_certificate(pki().ca, server_spec(endpoint_host));
    auto context = make_tls_server_context(identity);
    SSL_CTX* native = context->native_handle();
    // OpenSSL 3 refuses TLS 1.0 below security level 0 (its handshake signs with SHA-1).
    SSL_CTX_set_security_level(native, 0);
    REQUIRE(SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0") == 1);
    REQUIRE(SSL_CTX_set_min_proto_version(native, TLS1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(native, TLS1_VERSION) == 1);

    const probe_run run = probe_tls_server(identity, endpoint_host, context);
    require_failure(run.result, probe_phase::tls, failure_reason::tls_handshake_failed);
    CHECK_THAT(run.result.failure->detail, Catch::Contains("protocol version"));
    CHECK_FALSE(run.result.tls_ms);
}

TEST_CASE("A server that accepts TCP and never answers TLS times out in the tls phase", "[tls]") {
    asio::io_context io;
    loopback_tls_server server(io, server_behaviour::silent);
    const probe_run run =
        run_probe(io, direct_target(server.endpoint()), short_deadline, [&] { server.stop(); });
    require_failure(run.result, probe_phase::tls, failure_reason::timeout);
    CHECK(run.result.connect_ms);
    CHECK_FALSE(run.result.tls_ms);
    CHECK_FALSE(run.result.tls);
    CHECK(run.elapsed >= short_deadline);
    CHECK(run.elapsed < short_deadline + deadline_margin);
    CHECK(server.accepted() == 1);
}

TEST_CASE("A host name that could not be sent safely is refused before connecting", "[tls]") {
    asio::io_context io;
    // Nothing listens on the discard port of loopback, so a probe that connected anyway would
    // fail as refused and this test with it.
    const tcp::endpoint nowhere(asio::ip::make_address("127.0.0.1"), 9);
    for (const std::string host : {"", "ssm.example\r\nX-Injected: 1", "two words"}) {
        const probe_run run = run_probe(io, direct_target(nowhere, host), probe_budget, [] {});
        io.restart();
        require_failure(run.result, probe_phase::connect, failure_reason::other);
        CHECK_THAT(run.result.failure->detail, Catch::Contains("not a usable host name"));
    }
}

TEST_CASE("A closed port is reported as refused in the connect phase", "[tls]") {
    asio::io_context io;
    tcp::endpoint closed;
    {
        // An ephemeral port that was just free; nothing listens on it once the acceptor closes.
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        closed = acceptor.local_endpoint();
    }
    const probe_run run = run_probe(io, direct_target(closed), probe_budget, [] {});
    require_failure(run.result, probe_phase::connect, failure_reason::refused);
    CHECK_THAT(run.result.failure->detail, Catch::Contains(std::to_string(closed.port())));
    CHECK_FALSE(run.result.connect_ms);
}

TEST_CASE("A server that resets the connection after accepting it is reported as reset", "[tls]") {
    asio::io_context io;
    loopback_tls_server server(io, server_behaviour::reset_after_accept);
    const probe_run run =
        run_probe(io, direct_target(server.endpoint()), probe_budget, [&] { server.stop(); });
    require_failure(run.result, probe_phase::tls, failure_reason::reset);
    CHECK(run.elapsed < probe_budget);
}

TEST_CASE("A listener whose backlog is full makes the connect phase time out", "[tls]") {
    asio::io_context io;
    // Backlog 0 holds one finished connection; with it taken, Linux drops further SYNs, so the
    // probe's connect stays pending like one to a silently filtered port.
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor.listen(0);
    tcp::socket filler(io);
    boost::system::error_code filler_error = asio::error::would_block;
    filler.async_connect(acceptor.local_endpoint(),
                         [&](const boost::system::error_code& ec) { filler_error = ec; });
    io.run_for(1s);
    io.restart();
    REQUIRE_FALSE(filler_error);

    const probe_run run =
        run_probe(io, direct_target(acceptor.local_endpoint()), short_deadline, [] {});
    require_failure(run.result, probe_phase::connect, failure_reason::timeout);
    CHECK(run.elapsed >= short_deadline);
    CHECK(run.elapsed < short_deadline + deadline_margin);
}

TEST_CASE("A deadline already past ends the probe at once with a connect timeout", "[tls]") {
    asio::io_context io;
    loopback_tls_server server(io, server_behaviour::silent);
    const probe_run run =
        run_probe(io, direct_target(server.endpoint()), 0ms, [&] { server.stop(); });
    require_failure(run.result, probe_phase::connect, failure_reason::timeout);
    CHECK(run.elapsed < deadline_margin);
}

TEST_CASE("Through a CONNECT proxy the probe asks for host:port and handles its answer", "[tls]") {
    asio::io_context io;
    const test_identity identity = make_server_certificate(pki().ca, server_spec(endpoint_host));
    loopback_tls_server server(io, server_behaviour::tls, make_tls_server_context(identity));

    SECTION("a proxy that opens the tunnel") {
        loopback_connect_proxy proxy(io, proxy_behaviour::tunnel, server.endpoint());
        const tls_target target{endpoint_host, 443, proxy.endpoint(), true};
        const probe_run run = run_probe(io, target, probe_budget, [&] {
            proxy.stop();
            server.stop();
        });
        INFO("detail: " << (run.result.failure ? run.result.failure->detail : ""));
        CHECK(run.result.ok);
        CHECK(run.result.connect_ms);
        CHECK(run.result.proxy_ms);
        CHECK(run.result.tls_ms);
        REQUIRE(run.result.tls);
        CHECK(run.result.tls->subject == "CN=" + endpoint_host);
        REQUIRE(proxy.requests().size() == 1);
        CHECK(proxy.requests()[0] == "CONNECT " + endpoint_host + ":443 HTTP/1.1\r\nHost: " +
                                         endpoint_host + ":443\r\n\r\n");
        CHECK(server.accepted() == 1);
    }
    SECTION("a proxy that forbids the tunnel") {
        loopback_connect_proxy proxy(io, proxy_behaviour::refuse);
        const tls_target target{endpoint_host, 443, proxy.endpoint(), true};
        const probe_run run = run_probe(io, target, probe_budget, [&] {
            proxy.stop();
            server.stop();
        });
        require_failure(run.result, probe_phase::proxy, failure_reason::proxy_refused);
        CHECK_THAT(run.result.failure->detail, Catch::Contains("HTTP/1.1 403 Forbidden"));
        CHECK_FALSE(run.result.proxy_ms);
        CHECK_FALSE(run.result.tls);
        CHECK(server.accepted() == 0);
    }
    SECTION("a proxy that does not speak HTTP") {
        loopback_connect_proxy proxy(io, proxy_behaviour::garbage);
        const tls_target target{endpoint_host, 443, proxy.endpoint(), true};
        const probe_run run = run_probe(io, target, probe_budget, [&] {
            proxy.stop();
            server.stop();
        });
        require_failure(run.result, probe_phase::proxy, failure_reason::http_error);
        CHECK_THAT(run.result.failure->detail, Catch::Contains("SSH-2.0-OpenSSH_9.2"));
    }
    SECTION("a proxy that never answers") {
        loopback_connect_proxy proxy(io, proxy_behaviour::silent);
        const tls_target target{endpoint_host, 443, proxy.endpoint(), true};
        const probe_run run = run_probe(io, target, short_deadline, [&] {
            proxy.stop();
            server.stop();
        });
        require_failure(run.result, probe_phase::proxy, failure_reason::timeout);
        CHECK(run.elapsed < short_deadline + deadline_margin);
        REQUIRE(proxy.requests().size() == 1);
    }
}
