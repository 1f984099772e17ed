// SPDX-License-Identifier: Apache-2.0
// One deadline for a probe's pending I/O: when it passes, an action (closing sockets) runs once.
#pragma once

#include <utility>

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ssm_doctor {

using steady_time = std::chrono::steady_clock::time_point;

// Arms a timer for `deadline`. When it fires, `on_expiry` runs on the executor and expired()
// turns true; destroying the guard disarms it, so the action never touches a dead object.
// Probes close their sockets in `on_expiry`, which ends every pending operation with an error;
// the probe then checks expired() to record `timeout` rather than the cancellation's error.
class deadline_guard {
public:
    deadline_guard(boost::asio::any_io_executor executor, steady_time deadline,
                   std::function<void()> on_expiry)
        : state_(std::make_shared<state>()), timer_(std::move(executor), deadline) {
        state_->action = std::move(on_expiry);
        timer_.async_wait([s = state_](const boost::system::error_code& ec) {
            if (ec || !s->armed) {
                return;
            }
            s->expired = true;
            if (s->action) {
                s->action();
            }
        });
    }

    deadline_guard(const deadline_guard&) = delete;
    deadline_guard& operator=(const deadline_guard&) = delete;

    ~deadline_guard() {
        state_->armed = false;
        timer_.cancel();
    }

    bool expired() const { return state_->expired; }

private:
    struct state {
        bool armed = true;
        bool expired = false;
        std::function<void()> action;
    };
    std::shared_ptr<state> state_;
    boost::asio::steady_timer timer_;
};

}  // namespace ssm_doctor
