// SPDX-License-Identifier: Apache-2.0
// The notification protocol spoken directly, as sd_notify(3) describes it under NOTES: one
// datagram of newline-separated KEY=VALUE lines to the unix socket named by $NOTIFY_SOCKET ("@"
// first: Linux's abstract namespace). Without libsystemd the process maps seven fewer libraries
// (libsystemd pulls in libgcrypt, libgpg-error, liblzma, libzstd, liblz4 and libcap): 0.9 MiB
// less resident memory, measured in docs/benchmarks.md.
#include "agent/notify.hpp"

#include <utility>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "probes/unique_fd.hpp"

namespace ssm_doctor {
namespace {

// A listener that stops reading must not hold the loop (and its watchdog) for longer than this.
constexpr timeval send_timeout{1, 0};

// $NOTIFY_SOCKET as a socket address: "/path" or "@abstract" (the '@' becomes the leading NUL of
// Linux's abstract namespace). systemd's vsock addresses ("vsock:...", 254 and later, for
// virtual machines) are not spoken; nullopt for those and for anything unusable.
std::optional<std::pair<sockaddr_un, socklen_t>> notify_address(std::string_view name) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (name.size() < 2 || name.size() > sizeof address.sun_path ||
        (name.front() != '/' && name.front() != '@') || name.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    std::memcpy(address.sun_path, name.data(), name.size());
    socklen_t length = offsetof(sockaddr_un, sun_path) + name.size();
    if (name.front() == '@') {
        address.sun_path[0] = '\0';  // abstract: the length, not a NUL, ends the name
    } else if (name.size() == sizeof address.sun_path) {
        return std::nullopt;  // a path needs room for its terminating NUL
    } else {
        length += 1;
    }
    return std::pair{address, length};
}

}  // namespace

bool notify(std::string_view state) {
    const char* name = std::getenv("NOTIFY_SOCKET");
    if (name == nullptr || state.empty()) {
        return false;
    }
    const auto address = notify_address(name);
    if (!address) {
        return false;
    }
    const unique_fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        return false;
    }
    // Blocking, as systemd drains its queue at once, but bounded: see send_timeout.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    // No credentials are attached by hand: systemd's socket has SO_PASSCRED, so the kernel adds
    // this process's pid, which is the unit's main pid (NotifyAccess=main).
    ssize_t sent = -1;
    do {
        sent = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&address->first), address->second);
    } while (sent < 0 && errno == EINTR);
    return sent == static_cast<ssize_t>(state.size());
}

bool notify_reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ull +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
    return notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    // WATCHDOG_PID, when set, names the process the watchdog is for: a child that inherited the
    // environment must not ping on its parent's behalf.
    if (const char* pid = std::getenv("WATCHDOG_PID")) {
        const std::string_view text(pid);
        long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size() || value != ::getpid()) {
            return std::nullopt;
        }
    }
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (usec == nullptr) {
        return std::nullopt;
    }
    const std::string_view text(usec);
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0) {
        return std::nullopt;
    }
    return std::chrono::microseconds(value);
}

}  // namespace ssm_doctor
