// SPDX-License-Identifier: Apache-2.0
#include "tests/support/fake_http_server.hpp"

#include <chrono>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace ssm_doctor::testing {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

fake_http_server::fake_http_server(asio::io_context& io, responder respond)
    : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      port_(acceptor_.local_endpoint().port()),
      respond_(std::move(respond)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
}

void fake_http_server::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& weak : sockets_) {
        if (const auto socket = weak.lock()) {
            socket->close(ignored);
        }
    }
}

asio::awaitable<void> fake_http_server::accept_loop() {
    while (true) {
        boost::system::error_code ec;
        auto socket = std::make_shared<tcp::socket>(
            co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec)));
        if (ec) {
            co_return;
        }
        sockets_.push_back(socket);
        asio::co_spawn(acceptor_.get_executor(), serve(socket), asio::detached);
    }
}

asio::awaitable<void> fake_http_server::serve(std::shared_ptr<tcp::socket> socket) {
    boost::system::error_code ec;
    std::string data;
    const auto head_size =
        co_await asio::async_read_until(*socket, asio::dynamic_buffer(data), "\r\n\r\n",
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        co_return;
    }
    received_request request;
    std::istringstream head(data.substr(0, head_size));
    std::string line;
    std::getline(head, line);
    std::istringstream request_line(line);
    request_line >> request.method >> request.target;
    while (std::getline(head, line) && line != "\r") {
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            auto value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            value.erase(value.find_last_not_of("\r ") + 1);
            request.headers.push_back({line.substr(0, colon), value});
        }
    }
    requests_.push_back(request);
    const auto answer = respond_(request);
    asio::steady_timer pause(socket->get_executor());
    for (std::size_t i = 0; i < answer.pieces.size(); ++i) {
        if (i > 0) {
            pause.expires_after(5ms);
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_await asio::async_write(*socket, asio::buffer(answer.pieces[i]),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return;
        }
    }
    if (answer.hang) {
        // Wait for the client to give up (or for stop()).
        char byte = 0;
        co_await socket->async_read_some(asio::buffer(&byte, 1),
                                         asio::redirect_error(asio::use_awaitable, ec));
    }
    socket->close(ec);
}

std::string http_reason(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        default:
            return "Other";
    }
}

std::string http_answer(int status, const std::string& body,
                        const std::vector<std::string>& extra_headers, const std::string& reason) {
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " +
                       (reason.empty() ? http_reason(status) : reason) + "\r\n";
    text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& header : extra_headers) {
        text += header + "\r\n";
    }
    return text + "Connection: close\r\n\r\n" + body;
}

}  // namespace ssm_doctor::testing
