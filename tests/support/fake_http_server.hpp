// SPDX-License-Identifier: Apache-2.0
// A fake HTTP server on 127.0.0.1 with an ephemeral port, for the IMDS tests: each connection
// gets one answer chosen by the test, and every request is recorded.
#pragma once

#include <utility>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "probes/http_client.hpp"

namespace ssm_doctor::testing {

struct received_request {
    std::string method;
    std::string target;
    http_headers headers;
};

struct reply {
    std::vector<std::string> pieces;  // written one after the other, a few ms apart
    bool hang = false;                // then keep the connection open without a word
};

using responder = std::function<reply(const received_request&)>;

// Runs on the test's io_context, so the client under test and the server share one thread and
// need no locks. `respond` is called once per connection, on that thread.
class fake_http_server {
public:
    fake_http_server(boost::asio::io_context& io, responder respond);

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    http_endpoint endpoint() const { return http_endpoint{"127.0.0.1", port_}; }
    const std::vector<received_request>& requests() const { return requests_; }

    // Ends every pending operation so that io_context::run returns.
    void stop();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_;
    responder respond_;
    std::vector<received_request> requests_;
    std::vector<std::weak_ptr<boost::asio::ip::tcp::socket>> sockets_;
};

// The usual reason phrase of the statuses the tests use ("Other" for the rest).
std::string http_reason(int status);

// A whole HTTP/1.1 response with Content-Length and "Connection: close". `reason` defaults to
// the status's usual phrase.
std::string http_answer(int status, const std::string& body,
                        const std::vector<std::string>& extra_headers = {},
                        const std::string& reason = {});

}  // namespace ssm_doctor::testing
