// SPDX-License-Identifier: Apache-2.0
// The loopback TLS server and CONNECT proxy: coroutines on the test's io_context.
#include "tests/support/loopback_servers.hpp"

#include <utility>

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace ssm_doctor::testing {

endpoint_server_set::endpoint_server_set(const std::vector<server>& servers) {
    const auto ca = make_ca("Endpoint Test CA");
    ca_pem_ = ca.cert_pem();
    for (const auto& one : servers) {
        const auto identity = make_server_certificate(ca, one.spec);
        servers_.push_back(std::make_unique<loopback_tls_server>(
            io_, one.behaviour, make_tls_server_context(identity)));
    }
    thread_ = std::thread([this] { io_.run(); });
}

endpoint_server_set::~endpoint_server_set() {
    boost::asio::post(io_, [this] {
        for (auto& s : servers_) {
            s->stop();
        }
    });
    thread_.join();
}

std::shared_ptr<boost::asio::ssl::context> make_tls_server_context(const test_identity& identity) {
    auto context =
        std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
    const std::string cert = identity.cert_pem();
    const std::string key = identity.key_pem();
    context->use_certificate_chain(boost::asio::buffer(cert));
    context->use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
    return context;
}
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

tcp::acceptor loopback_acceptor(asio::io_context& io) {
    return tcp::acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
}

// Reads and drops bytes until the peer closes or the socket is closed under us.
asio::awaitable<void> drain(tcp::socket& socket) {
    std::array<char, 1024> buffer;
    error_code ec;
    while (!ec) {
        co_await socket.async_read_some(asio::buffer(buffer),
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
}

// Copies bytes from one socket to the other until either side ends, then closes both.
asio::awaitable<void> relay(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, 4096> buffer;
    error_code ec;
    for (;;) {
        const std::size_t n = co_await from->async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            break;
        }
        co_await asio::async_write(*to, asio::buffer(buffer, n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            break;
        }
    }
    from->close(ec);
    to->close(ec);
}

}  // namespace

std::shared_ptr<tcp::socket> connection_set::track(tcp::socket socket) {
    auto shared = std::make_shared<tcp::socket>(std::move(socket));
    sockets_.push_back(shared);
    return shared;
}

void connection_set::close_all() {
    for (const auto& weak : sockets_) {
        if (auto socket = weak.lock()) {
            error_code ignored;
            socket->close(ignored);
        }
    }
    sockets_.clear();
}

loopback_tls_server::loopback_tls_server(asio::io_context& io, server_behaviour behaviour,
                                         std::shared_ptr<ssl::context> tls)
    : behaviour_(behaviour), tls_(std::move(tls)), acceptor_(loopback_acceptor(io)) {
    endpoint_ = acceptor_.local_endpoint();
    asio::co_spawn(io, accept_loop(), asio::detached);
}

void loopback_tls_server::stop() {
    error_code ignored;
    acceptor_.close(ignored);
    connections_.close_all();
}

asio::awaitable<void> loopback_tls_server::accept_loop() {
    for (;;) {
        error_code ec;
        tcp::socket socket =
            co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return;  // closed by stop()
        }
        ++accepted_;
        asio::co_spawn(acceptor_.get_executor(), serve(connections_.track(std::move(socket))),
                       asio::detached);
    }
}

asio::awaitable<void> loopback_tls_server::serve(std::shared_ptr<tcp::socket> socket) {
    error_code ec;
    switch (behaviour_) {
        case server_behaviour::reset_after_accept:
            // Linger on with a zero timeout turns close() into an RST instead of a FIN.
            socket->set_option(asio::socket_base::linger(true, 0), ec);
            socket->close(ec);
            co_return;
        case server_behaviour::silent:
            co_await drain(*socket);
            co_return;
        case server_behaviour::tls: {
            ssl::stream<tcp::socket&> stream(*socket, *tls_);
            co_await stream.async_handshake(ssl::stream_base::server,
                                            asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) {
                co_await drain(*socket);
            }
            socket->close(ec);
            co_return;
        }
    }
}

loopback_connect_proxy::loopback_connect_proxy(asio::io_context& io, proxy_behaviour behaviour,
                                               tcp::endpoint upstream)
    : behaviour_(behaviour), upstream_(upstream), acceptor_(loopback_acceptor(io)) {
    endpoint_ = acceptor_.local_endpoint();
    asio::co_spawn(io, accept_loop(), asio::detached);
}

void loopback_connect_proxy::stop() {
    error_code ignored;
    acceptor_.close(ignored);
    connections_.close_all();
}

asio::awaitable<void> loopback_connect_proxy::accept_loop() {
    for (;;) {
        error_code ec;
        tcp::socket socket =
            co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return;
        }
        asio::co_spawn(acceptor_.get_executor(), serve(connections_.track(std::move(socket))),
                       asio::detached);
    }
}

asio::awaitable<void> loopback_connect_proxy::serve(std::shared_ptr<tcp::socket> client) {
    auto on_error = [](error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); };
    error_code ec;
    std::string head;
    const std::size_t head_size = co_await asio::async_read_until(
        *client, asio::dynamic_buffer(head, 8192), "\r\n\r\n", on_error(ec));
    if (ec) {
        co_return;
    }
    requests_.push_back(head.substr(0, head_size));

    std::string answer;
    switch (behaviour_) {
        case proxy_behaviour::silent:
            co_await drain(*client);
            co_return;
        case proxy_behaviour::refuse:
            answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
            break;
        case proxy_behaviour::garbage:
            answer = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
            break;
        case proxy_behaviour::tunnel: {
            auto upstream = connections_.track(tcp::socket(client->get_executor()));
            co_await upstream->async_connect(upstream_, on_error(ec));
            if (ec) {
                answer = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
                break;
            }
            answer = "HTTP/1.1 200 Connection established\r\n\r\n";
            co_await asio::async_write(*client, asio::buffer(answer), on_error(ec));
            if (ec) {
                co_return;
            }
            asio::co_spawn(client->get_executor(), relay(upstream, client), asio::detached);
            co_await relay(client, upstream);
            co_return;
        }
    }
    co_await asio::async_write(*client, asio::buffer(answer), on_error(ec));
    client->close(ec);
}

}  // namespace ssm_doctor::testing
