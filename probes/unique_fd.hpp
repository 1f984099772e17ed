// SPDX-License-Identifier: Apache-2.0
// An owned file descriptor, closed when its owner goes away.
#pragma once

#include <utility>

#include <unistd.h>

namespace ssm_doctor {

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

    // Gives up ownership: the caller closes the descriptor.
    int release() { return std::exchange(fd_, -1); }

    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);  // the descriptor is gone even when close reports EINTR on Linux
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace ssm_doctor
