// SPDX-License-Identifier: Apache-2.0
// The rotating event log file: lock, notice rotations by others, rotate, append whole lines.
#include "agent/event_log.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ssm_doctor {
namespace {

// flock on the directory: excludes the writers of other processes while one checks the size,
// rotates and writes. Threads of this process are kept apart by the mutex (they share the
// descriptor, and flock does not exclude holders of the same open file).
class directory_lock {
public:
    explicit directory_lock(int fd) : fd_(fd) {
        while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
        }
    }
    ~directory_lock() { ::flock(fd_, LOCK_UN); }
    directory_lock(const directory_lock&) = delete;
    directory_lock& operator=(const directory_lock&) = delete;

private:
    int fd_;
};

std::filesystem::path numbered(const std::filesystem::path& file, int n) {
    return file.string() + "." + std::to_string(n);
}

}  // namespace

event_log_file::event_log_file(events_settings settings) : settings_(std::move(settings)) {
    std::lock_guard guard(mutex_);
    open_directory();
    directory_lock lock(directory_.get());
    open_file();
}

void event_log_file::fail(std::string_view what, int error) const {
    throw event_log_error("event log " + settings_.file.string() + ": " + std::string(what) + ": " +
                          std::strerror(error));
}

void event_log_file::open_directory() {
    const auto dir = settings_.file.parent_path().empty() ? std::filesystem::path(".")
                                                          : settings_.file.parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        if (dir.has_parent_path()) {
            std::filesystem::create_directories(dir.parent_path(), ec);
        }
        // The events may name internal endpoints and addresses: not for every local user.
        if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
            fail("cannot create the directory " + dir.string(), errno);
        }
    }
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fail("cannot open the directory " + dir.string(), errno);
    }
    directory_.reset(fd);
}

void event_log_file::open_file() {
    const int fd =
        ::open(settings_.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        fail("open", errno);
    }
    unique_fd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        fail("fstat", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        fail("open", EINVAL);  // a device or FIFO would never rotate
    }
    file_ = std::move(owned);
    inode_ = st.st_ino;
    device_ = st.st_dev;
}

void event_log_file::rotate() {
    // file.<keep-1> -> file.<keep> (replacing the oldest) ... file -> file.1. Renames keep
    // the data in place: a reader holding the old file reads on to its end.
    for (int n = settings_.keep - 1; n >= 1; --n) {
        if (::rename(numbered(settings_.file, n).c_str(),
                     numbered(settings_.file, n + 1).c_str()) != 0 &&
            errno != ENOENT) {
            fail("rotate " + numbered(settings_.file, n).string(), errno);
        }
    }
    const int result = settings_.keep >= 1
                           ? ::rename(settings_.file.c_str(), numbered(settings_.file, 1).c_str())
                           : ::unlink(settings_.file.c_str());
    if (result != 0 && errno != ENOENT) {
        fail("rotate", errno);
    }
    file_.reset();
}

void event_log_file::append(std::string_view line) {
    std::string buffer(line);
    for (auto& c : buffer) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    buffer += '\n';

    std::lock_guard guard(mutex_);
    if (!directory_) {
        open_directory();  // failed earlier; try again
    }
    directory_lock lock(directory_.get());

    // Another process may have rotated or removed the file since our last write.
    struct stat named {};
    if (::stat(settings_.file.c_str(), &named) != 0 || named.st_ino != inode_ ||
        named.st_dev != device_) {
        file_.reset();
    }
    if (!file_) {
        open_file();
    }
    struct stat st {};
    if (::fstat(file_.get(), &st) != 0) {
        fail("fstat", errno);
    }
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > 0 && size + buffer.size() > settings_.max_bytes) {
        rotate();
        open_file();
        size = 0;
    }

    std::size_t written = 0;
    while (written < buffer.size()) {
        const ssize_t n = ::write(file_.get(), buffer.data() + written, buffer.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const int error = n < 0 ? errno : EIO;
            // Undo the part written: the next reader must not see half an event. Safe under the
            // lock, which keeps the other writers out.
            if (written > 0 && ::ftruncate(file_.get(), static_cast<off_t>(size)) != 0) {
                fail("write failed and the partial line could not be removed", errno);
            }
            fail("write", error);
        }
        written += static_cast<std::size_t>(n);
    }
}

}  // namespace ssm_doctor
