// SPDX-License-Identifier: Apache-2.0
// sd_notify and sd_watchdog_enabled from libsystemd, with its error codes turned into results.
#include "agent/notify.hpp"

#include <cstdint>
#include <string>

#include <systemd/sd-daemon.h>
#include <time.h>

namespace ssm_doctor {

bool notify(std::string_view state) {
    // sd_notify wants a C string; 0 keeps NOTIFY_SOCKET set for the next notification.
    const std::string text(state);
    return sd_notify(0, text.c_str()) > 0;
}

bool notify_reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ull +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
    return notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
        return std::nullopt;
    }
    return std::chrono::microseconds(usec);
}

}  // namespace ssm_doctor
