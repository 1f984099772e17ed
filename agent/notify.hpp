// SPDX-License-Identifier: Apache-2.0
// The service manager's notification protocol (sd_notify): readiness, status and watchdog pings.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ssm_doctor {

// Sends `state` ("READY=1", "STATUS=...", several lines joined by '\n') to $NOTIFY_SOCKET.
// Returns true when it was sent; false when no service manager listens (NOTIFY_SOCKET unset, as
// outside systemd or with Type=simple) or the send failed. Never throws: a lost notification
// must not stop the daemon, and systemd notices a missing READY or WATCHDOG on its own.
// Limit: the send blocks while the receiver's queue is full (systemd drains it at once), for at
// most one second, so callers send on change, not in bulk. Spoken without libsystemd: a path or
// an abstract ("@name") socket; systemd's vsock addresses are not supported.
bool notify(std::string_view state);

// "RELOADING=1" with the MONOTONIC_USEC that systemd 253 and later require next to it (252
// ignores the extra field).
bool notify_reloading();

// The interval at which systemd expects WATCHDOG=1 (WatchdogSec=, passed as $WATCHDOG_USEC for
// this pid); nullopt when the watchdog is off or the variables are not meant for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace ssm_doctor
