// SPDX-License-Identifier: Apache-2.0
// Servers on 127.0.0.1 for the TLS probe's tests: a TLS server with set misbehaviours and a fake
// HTTP CONNECT proxy, both on the test's own io_context and ephemeral ports.
#pragma once

#include <utility>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "tests/support/test_certs.hpp"

namespace ssm_doctor::testing {

// A TLS server context presenting `identity`'s certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_server_context(const test_identity& identity);

// Every accepted connection of a server, so stop() can end them all and let run() return.
class connection_set {
public:
    std::shared_ptr<boost::asio::ip::tcp::socket> track(boost::asio::ip::tcp::socket socket);
    void close_all();

private:
    std::vector<std::weak_ptr<boost::asio::ip::tcp::socket>> sockets_;
};

enum class server_behaviour {
    tls,                 // completes the handshake with the given context, then reads until EOF
    silent,              // accepts and reads, never says a word
    reset_after_accept,  // accepts and closes at once with SO_LINGER 0: the client gets an RST
};

class loopback_tls_server {
public:
    // `tls` is needed only for server_behaviour::tls.
    loopback_tls_server(boost::asio::io_context& io, server_behaviour behaviour,
                        std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
    loopback_tls_server(const loopback_tls_server&) = delete;
    loopback_tls_server& operator=(const loopback_tls_server&) = delete;

    boost::asio::ip::tcp::endpoint endpoint() const { return endpoint_; }
    int accepted() const { return accepted_; }
    // Closes the listener and all connections; pending operations end with errors.
    void stop();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

    server_behaviour behaviour_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp::endpoint endpoint_;
    connection_set connections_;
    int accepted_ = 0;
};

// One TLS server per endpoint, all certified by one test CA, served on a thread of their own
// so that a blocking call under test (a whole check) can talk to them.
class endpoint_server_set {
public:
    struct server {
        certificate_spec spec;
        server_behaviour behaviour = server_behaviour::tls;
    };

    explicit endpoint_server_set(const std::vector<server>& servers);
    ~endpoint_server_set();
    endpoint_server_set(const endpoint_server_set&) = delete;
    endpoint_server_set& operator=(const endpoint_server_set&) = delete;

    const std::string& ca_pem() const { return ca_pem_; }
    boost::asio::ip::tcp::endpoint endpoint(std::size_t i) const {
        return servers_.at(i)->endpoint();
    }

private:
    boost::asio::io_context io_;
    std::string ca_pem_;
    std::vector<std::unique_ptr<loopback_tls_server>> servers_;
    std::thread thread_;
};

enum class proxy_behaviour {
    tunnel,   // answers 200 and relays bytes to the upstream server both ways
    refuse,   // answers 403 Forbidden and closes
    garbage,  // answers with a line that is not HTTP
    silent,   // reads the request and never answers
};

class loopback_connect_proxy {
public:
    // `upstream` is where a tunnel goes, whatever host the CONNECT names: tests never leave
    // the loopback.
    loopback_connect_proxy(boost::asio::io_context& io, proxy_behaviour behaviour,
                           boost::asio::ip::tcp::endpoint upstream = {});
    loopback_connect_proxy(const loopback_connect_proxy&) = delete;
    loopback_connect_proxy& operator=(const loopback_connect_proxy&) = delete;

    boost::asio::ip::tcp::endpoint endpoint() const { return endpoint_; }
    // The request heads received, up to and including the blank line.
    const std::vector<std::string>& requests() const { return requests_; }
    void stop();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(std::shared_ptr<boost::asio::ip::tcp::socket> client);

    proxy_behaviour behaviour_;
    boost::asio::ip::tcp::endpoint upstream_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp::endpoint endpoint_;
    connection_set connections_;
    std::vector<std::string> requests_;
};

}  // namespace ssm_doctor::testing
