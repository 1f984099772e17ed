// SPDX-License-Identifier: Apache-2.0
// The JSON event log a CloudWatch agent collects: one event per line, size-capped and rotated
// to file.1 .. file.<keep> without losing or splitting a line.
//
// Rotation renames (never truncates), so a collector that still has the old file open reads its
// end. Writers in other processes (a one-shot check beside the daemon) take the same lock on the
// directory and notice a rotation by the file's inode. Limits: a line longer than max_bytes is
// written alone into a fresh file, which then exceeds the cap; the directory and file are
// created 0750 and 0640 under the caller's umask and owner.
#pragma once

#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include <sys/types.h>

#include "agent/config.hpp"
#include "probes/unique_fd.hpp"

namespace ssm_doctor {

// Names the path and the system's reason: "event log /var/log/ssm-doctor/events.log: write:
// No space left on device".
class event_log_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thread-safe. Throws event_log_error when the directory cannot be created or the file cannot
// be opened, written or rotated; the log stays usable and retries on the next append.
class event_log_file {
public:
    explicit event_log_file(events_settings settings);

    // Writes `line` and a newline with one write() on an O_APPEND descriptor (a short write is
    // finished; a failed one is undone, so no partial line stays). Newlines inside `line` become
    // spaces: one line is one event for the collector. Rotates first when the file would
    // exceed max_bytes.
    void append(std::string_view line);

    const std::filesystem::path& path() const { return settings_.file; }

private:
    void open_directory();
    void open_file();
    void rotate();
    [[noreturn]] void fail(std::string_view what, int error) const;

    events_settings settings_;
    std::mutex mutex_;
    unique_fd directory_;
    unique_fd file_;
    ino_t inode_ = 0;
    dev_t device_ = 0;
};

}  // namespace ssm_doctor
