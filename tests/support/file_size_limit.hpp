// SPDX-License-Identifier: Apache-2.0
// A lowered file size limit for one scope, so that write() comes up short and then fails with
// EFBIG (SIGXFSZ ignored meanwhile): how tests provoke a disk that refuses data.
#pragma once

#include <csignal>

#include <sys/resource.h>

namespace ssm_doctor::testing {

class file_size_limit {
public:
    explicit file_size_limit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &saved_);
        previous_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lowered = saved_;
        lowered.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &lowered);
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, previous_);
    }
    file_size_limit(const file_size_limit&) = delete;
    file_size_limit& operator=(const file_size_limit&) = delete;

private:
    rlimit saved_{};
    void (*previous_)(int) = nullptr;
};

}  // namespace ssm_doctor::testing
