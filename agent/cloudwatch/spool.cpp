// SPDX-License-Identifier: Apache-2.0
// The spool's segment files, records, state file and recovery after a crash.
#include "agent/cloudwatch/spool.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/unique_fd.hpp"

namespace ssm_doctor {
namespace {

// A record: magic, message length, sequence, timestamp, CRC-32 of the fields after the magic
// except itself and of the message; then the message. Little-endian.
constexpr std::uint32_t record_magic = 0x31525053;  // "SPR1" on disk
constexpr std::size_t header_bytes = 4 + 4 + 8 + 8 + 4;
constexpr std::string_view segment_prefix = "segment-";
constexpr std::string_view segment_suffix = ".log";
constexpr std::string_view state_name = "state";
constexpr std::string_view state_magic = "ssm-doctor-spool 1";

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        table[i] = c;
    }
    return table;
}
constexpr auto crc_table = make_crc_table();

// CRC-32 (IEEE 802.3, as zlib), continued from `crc`.
std::uint32_t crc32(std::uint32_t crc, const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (std::size_t i = 0; i < size; ++i) {
        crc = crc_table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

template <typename T>
void put(std::string& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFF));
    }
}

template <typename T>
T get(const char* in) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    return static_cast<T>(value);
}

struct record_header {
    std::uint32_t magic = 0;
    std::uint32_t length = 0;
    std::uint64_t sequence = 0;
    std::int64_t timestamp_ms = 0;
    std::uint32_t crc = 0;
};

record_header parse_header(const char* p) {
    return {get<std::uint32_t>(p), get<std::uint32_t>(p + 4), get<std::uint64_t>(p + 8),
            get<std::int64_t>(p + 16), get<std::uint32_t>(p + 24)};
}

std::uint32_t record_crc(const char* header, std::string_view message) {
    const std::uint32_t crc = crc32(0, header + 4, 20);  // length, sequence, timestamp
    return crc32(crc, message.data(), message.size());
}

std::string encode_record(std::uint64_t sequence, std::int64_t timestamp_ms,
                          std::string_view message) {
    std::string out;
    out.reserve(header_bytes + message.size());
    put(out, record_magic);
    put(out, static_cast<std::uint32_t>(message.size()));
    put(out, sequence);
    put(out, timestamp_ms);
    put(out, record_crc(out.data(), message));
    out.append(message);
    return out;
}

// A whole valid record at `offset` of `data`, or nothing.
std::optional<record_header> valid_record_at(std::string_view data, std::size_t offset) {
    if (data.size() - offset < header_bytes) {
        return std::nullopt;
    }
    const auto h = parse_header(data.data() + offset);
    if (h.magic != record_magic || h.length > data.size() - offset - header_bytes) {
        return std::nullopt;
    }
    if (record_crc(data.data() + offset, data.substr(offset + header_bytes, h.length)) != h.crc) {
        return std::nullopt;
    }
    return h;
}

std::string segment_name(std::uint64_t first_sequence) {
    std::string digits = std::to_string(first_sequence);
    return std::string(segment_prefix) + std::string(20 - digits.size(), '0') + digits +
           std::string(segment_suffix);
}

std::optional<std::uint64_t> parse_segment_name(const std::string& name) {
    if (name.size() != segment_prefix.size() + 20 + segment_suffix.size() ||
        !name.starts_with(segment_prefix) || !name.ends_with(segment_suffix)) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const char* first = name.data() + segment_prefix.size();
    const auto [end, ec] = std::from_chars(first, first + 20, value);
    if (ec != std::errc() || end != first + 20) {
        return std::nullopt;
    }
    return value;
}

std::string system_error_text(int error) {
    return std::strerror(error);
}

bool write_all(int fd, std::string_view data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

struct event_spool::state {
    struct segment {
        std::uint64_t first_sequence = 0;  // from the file name
        std::uint64_t size = 0;
    };
    struct entry {
        std::uint64_t sequence = 0;
        std::int64_t timestamp_ms = 0;
        std::uint64_t segment_first = 0;
        std::uint64_t offset = 0;
        std::uint32_t length = 0;  // of the message
    };

    std::filesystem::path directory;
    std::uint64_t max_bytes = 0;
    std::uint64_t segment_bytes = 0;
    unique_fd directory_fd;
    std::deque<segment> segments;  // oldest first; the last is the one appended to
    unique_fd active;              // the last segment, open for appending, or none
    std::deque<entry> index;       // pending events, oldest first
    std::uint64_t next_sequence = 1;
    std::uint64_t consumed = 0;  // every sequence up to here was delivered or dropped
    std::uint64_t dropped = 0;
    std::uint64_t pending_bytes = 0;
    std::uint64_t bound_drops_unreported = 0;  // for the next note
    std::vector<std::string> notes;

    std::filesystem::path segment_path(std::uint64_t first) const {
        return directory / segment_name(first);
    }

    [[noreturn]] void fail(const std::filesystem::path& path, std::string_view what,
                           int error) const {
        throw std::runtime_error("spool " + path.string() + ": " + std::string(what) + ": " +
                                 system_error_text(error));
    }

    void sync_directory() const {
        if (::fsync(directory_fd.get()) != 0) {
            fail(directory, "fsync", errno);
        }
    }

    // Replaced atomically: written to state.tmp, synced, renamed over `state`, the directory
    // synced. The checksum line catches a state file damaged in place.
    void write_state() const {
        std::ostringstream body;
        body << state_magic << "\nconsumed " << consumed << "\ndropped " << dropped << "\n";
        const std::string text = body.str();
        const std::string full =
            text + "crc " + std::to_string(crc32(0, text.data(), text.size())) + "\n";
        const auto temporary = directory / "state.tmp";
        unique_fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) {
            fail(temporary, "open", errno);
        }
        if (!write_all(fd.get(), full) || ::fsync(fd.get()) != 0) {
            fail(temporary, "write", errno);
        }
        fd.reset();
        const auto target = directory / std::string(state_name);
        if (::rename(temporary.c_str(), target.c_str()) != 0) {
            fail(target, "rename", errno);
        }
        sync_directory();
    }

    void read_state() {
        const auto path = directory / std::string(state_name);
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            return;  // a new spool
        }
        std::string magic, consumed_key, dropped_key, crc_key;
        std::uint64_t consumed_value = 0, dropped_value = 0, crc_value = 0;
        std::getline(in, magic);
        in >> consumed_key >> consumed_value >> dropped_key >> dropped_value >> crc_key >>
            crc_value;
        std::ostringstream body;
        body << magic << "\nconsumed " << consumed_value << "\ndropped " << dropped_value << "\n";
        const std::string text = body.str();
        if (!in || magic != state_magic || consumed_key != "consumed" || dropped_key != "dropped" ||
            crc_key != "crc" || crc_value != crc32(0, text.data(), text.size())) {
            notes.push_back("spool " + path.string() +
                            " is damaged: delivered events may be sent again and the dropped "
                            "counter restarts at 0");
            return;
        }
        consumed = consumed_value;
        dropped = dropped_value;
    }

    // Reads one segment whole (at most segment_bytes plus one record), indexing its valid
    // records. `last` segment: a torn or damaged tail is cut off so appends continue cleanly.
    void recover_segment(segment& seg, bool last, std::uint64_t& last_sequence) {
        const auto path = segment_path(seg.first_sequence);
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            notes.push_back("spool " + path.string() + " cannot be read; its events are lost");
            return;
        }
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string_view view(data);
        std::size_t offset = 0;
        std::size_t valid_end = 0;
        bool damaged_tail = false;
        while (offset < view.size()) {
            const auto h = valid_record_at(view, offset);
            if (!h) {
                // Resynchronise at the next whole valid record; the events lost in between
                // show as a gap in the sequence.
                std::size_t next = offset + 1;
                std::optional<record_header> found;
                while (next + header_bytes <= view.size()) {
                    const auto at = view.find(std::string_view("SPR1"), next);
                    if (at == std::string_view::npos) {
                        break;
                    }
                    if ((found = valid_record_at(view, at))) {
                        next = at;
                        break;
                    }
                    next = at + 1;
                }
                if (!found) {
                    damaged_tail = true;
                    break;
                }
                notes.push_back("spool " + path.string() + ": damaged bytes " +
                                std::to_string(offset) + ".." + std::to_string(next) + " skipped");
                offset = next;
                continue;
            }
            if (h->sequence <= last_sequence) {
                notes.push_back("spool " + path.string() + ": record " +
                                std::to_string(h->sequence) + " out of order, skipped");
            } else {
                const auto expected = std::max(last_sequence, consumed) + 1;
                if (h->sequence > expected) {
                    const auto lost = h->sequence - expected;
                    dropped += lost;
                    notes.push_back("spool " + path.string() + ": " + std::to_string(lost) +
                                    " events lost to damage before sequence " +
                                    std::to_string(h->sequence));
                }
                if (h->sequence > consumed) {
                    index.push_back(
                        {h->sequence, h->timestamp_ms, seg.first_sequence, offset, h->length});
                    pending_bytes += header_bytes + h->length;
                }
                last_sequence = h->sequence;
            }
            offset += header_bytes + h->length;
            valid_end = offset;
        }
        seg.size = valid_end;
        if (!damaged_tail) {
            return;
        }
        // A tail too short for its own header or length was being written when the process
        // stopped: its append never returned, so nothing acknowledged is lost. A whole record
        // with a bad checksum was appended and is counted.
        const std::size_t rest = view.size() - valid_end;
        bool torn = rest < header_bytes;
        if (!torn) {
            const auto h = parse_header(view.data() + valid_end);
            torn = h.magic == record_magic && h.length > rest - header_bytes;
        }
        if (!torn) {
            // Its sequence was handed out; keep it from being used again when it is the one due.
            const auto h = parse_header(view.data() + valid_end);
            if (h.sequence == std::max(last_sequence, consumed) + 1) {
                last_sequence = h.sequence;
            }
        }
        if (torn) {
            notes.push_back("spool " + path.string() + ": torn record of " + std::to_string(rest) +
                            " bytes at the end ignored");
        } else {
            dropped += 1;
            notes.push_back("spool " + path.string() + ": damaged record of " +
                            std::to_string(rest) + " bytes at offset " + std::to_string(valid_end) +
                            " dropped");
        }
        if (last && ::truncate(path.c_str(), static_cast<off_t>(valid_end)) != 0) {
            fail(path, "truncate", errno);
        }
    }

    void recover() {
        std::vector<std::uint64_t> firsts;
        std::error_code ec;
        for (const auto& item : std::filesystem::directory_iterator(directory, ec)) {
            if (const auto first = parse_segment_name(item.path().filename().string())) {
                firsts.push_back(*first);
            }
        }
        if (ec) {
            fail(directory, "list", ec.value());
        }
        std::sort(firsts.begin(), firsts.end());
        std::uint64_t last_sequence = 0;
        for (std::size_t i = 0; i < firsts.size(); ++i) {
            segments.push_back({firsts[i], 0});
            recover_segment(segments.back(), i + 1 == firsts.size(), last_sequence);
        }
        next_sequence = std::max(last_sequence, consumed) + 1;
        if (!segments.empty()) {
            // A last segment whose records were all damaged still reserves its first sequence.
            next_sequence = std::max(next_sequence, segments.back().first_sequence);
            const auto path = segment_path(segments.back().first_sequence);
            active.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
            if (!active) {
                fail(path, "open", errno);
            }
        }
        remove_consumed_segments();
    }

    // Deletes the segments whose every record is consumed. The active one goes too when
    // nothing is pending, so an idle spool leaves no file but `state`.
    void remove_consumed_segments() {
        auto remove = [this](std::uint64_t first) {
            const auto path = segment_path(first);
            if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
                notes.push_back("spool " + path.string() +
                                " could not be removed: " + system_error_text(errno));
            }
        };
        while (segments.size() > 1 && segments[1].first_sequence <= consumed + 1) {
            remove(segments.front().first_sequence);
            segments.pop_front();
        }
        if (index.empty() && !segments.empty()) {
            active.reset();
            for (const auto& s : segments) {
                remove(s.first_sequence);
            }
            segments.clear();
        }
    }

    void start_segment() {
        active.reset();
        const auto path = segment_path(next_sequence);
        active.reset(
            ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!active) {
            fail(path, "create", errno);
        }
        sync_directory();  // the new name must survive a crash with its records
        segments.push_back({next_sequence, 0});
    }

    void drop_oldest_for(std::uint64_t record_bytes) {
        std::uint64_t count = 0;
        while (!index.empty() && pending_bytes + record_bytes > max_bytes) {
            pending_bytes -= header_bytes + index.front().length;
            consumed = index.front().sequence;
            index.pop_front();
            ++count;
        }
        if (count > 0) {
            dropped += count;
            bound_drops_unreported += count;
            write_state();
            remove_consumed_segments();
        }
    }
};

event_spool::event_spool(std::filesystem::path directory, std::uint64_t max_bytes)
    : state_(std::make_unique<state>()) {
    if (max_bytes < 4096) {
        throw std::invalid_argument("spool " + directory.string() + ": max_bytes " +
                                    std::to_string(max_bytes) + " is below 4096");
    }
    auto& s = *state_;
    s.directory = std::move(directory);
    s.max_bytes = max_bytes;
    s.segment_bytes = std::clamp<std::uint64_t>(max_bytes / 16, 4096, 4u << 20);

    std::error_code ec;
    std::filesystem::create_directories(s.directory, ec);
    if (ec) {
        s.fail(s.directory, "cannot create the directory", ec.value());
    }
    s.directory_fd.reset(::open(s.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s.directory_fd) {
        s.fail(s.directory, "cannot open the directory", errno);
    }
    s.read_state();
    s.recover();
    // Written on every start: proves the directory writable now, not at the first event, and
    // keeps the dropped counter of damage found above.
    s.write_state();
}

event_spool::~event_spool() = default;

void event_spool::append(std::int64_t timestamp_ms, const std::string& message) {
    auto& s = *state_;
    const std::uint64_t record_bytes = header_bytes + message.size();
    if (record_bytes > s.max_bytes || message.size() > std::numeric_limits<std::uint32_t>::max()) {
        s.dropped += 1;
        s.notes.push_back("spool " + s.directory.string() + ": an event of " +
                          std::to_string(message.size()) + " bytes exceeds the bound of " +
                          std::to_string(s.max_bytes) + " bytes and was dropped");
        s.write_state();
        return;
    }
    s.drop_oldest_for(record_bytes);

    if (!s.active ||
        (s.segments.back().size > 0 && s.segments.back().size + record_bytes > s.segment_bytes)) {
        s.start_segment();
    }
    auto& seg = s.segments.back();
    const auto path = s.segment_path(seg.first_sequence);
    const std::string record = encode_record(s.next_sequence, timestamp_ms, message);
    if (!write_all(s.active.get(), record) || ::fdatasync(s.active.get()) != 0) {
        const int error = errno;
        // Remove what part of the record reached the file, so the next append follows a whole
        // record; if even that fails, recovery will find the torn tail.
        if (::ftruncate(s.active.get(), static_cast<off_t>(seg.size)) != 0) {
            s.active.reset();
        }
        s.fail(path, "append", error);
    }
    s.index.push_back({s.next_sequence, timestamp_ms, seg.first_sequence, seg.size,
                       static_cast<std::uint32_t>(message.size())});
    seg.size += record_bytes;
    s.pending_bytes += record_bytes;
    ++s.next_sequence;
}

std::vector<spooled_event> event_spool::peek(std::size_t max_events, std::size_t max_bytes) const {
    auto& s = *state_;
    std::vector<spooled_event> out;
    std::size_t bytes = 0;
    unique_fd fd;
    std::uint64_t open_segment = std::numeric_limits<std::uint64_t>::max();
    std::string buffer;
    for (std::size_t i = 0; i < s.index.size() && out.size() < max_events;) {
        const auto e = s.index[i];
        if (bytes + e.length > max_bytes) {
            break;
        }
        const auto path = s.segment_path(e.segment_first);
        if (e.segment_first != open_segment) {
            fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            open_segment = e.segment_first;
        }
        buffer.resize(header_bytes + e.length);
        ssize_t got = -1;
        if (fd) {
            do {
                got = ::pread(fd.get(), buffer.data(), buffer.size(), static_cast<off_t>(e.offset));
            } while (got < 0 && errno == EINTR);
        }
        const auto h = got == static_cast<ssize_t>(buffer.size()) ? valid_record_at(buffer, 0)
                                                                  : std::optional<record_header>{};
        if (!h || h->sequence != e.sequence || h->length != e.length) {
            // Damaged since it was written (or the file vanished): skip it and say so, rather
            // than stall delivery on it forever.
            s.notes.push_back("spool " + path.string() + ": event " + std::to_string(e.sequence) +
                              " at offset " + std::to_string(e.offset) +
                              " is damaged or unreadable and was dropped");
            s.dropped += 1;
            s.pending_bytes -= header_bytes + e.length;
            s.index.erase(s.index.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        out.push_back({e.sequence, e.timestamp_ms, buffer.substr(header_bytes)});
        bytes += e.length;
        ++i;
    }
    return out;
}

void event_spool::acknowledge(std::uint64_t sequence) {
    auto& s = *state_;
    sequence = std::min(sequence, s.next_sequence - 1);
    if (sequence <= s.consumed) {
        return;
    }
    while (!s.index.empty() && s.index.front().sequence <= sequence) {
        s.pending_bytes -= header_bytes + s.index.front().length;
        s.index.pop_front();
    }
    s.consumed = sequence;
    s.write_state();
    s.remove_consumed_segments();
}

std::size_t event_spool::pending() const {
    return state_->index.size();
}

std::uint64_t event_spool::pending_bytes() const {
    return state_->pending_bytes;
}

std::uint64_t event_spool::dropped() const {
    return state_->dropped;
}

std::vector<std::string> event_spool::take_notes() {
    auto& s = *state_;
    if (s.bound_drops_unreported > 0) {
        s.notes.push_back("spool " + s.directory.string() + " reached its bound of " +
                          std::to_string(s.max_bytes) + " bytes: dropped the " +
                          std::to_string(s.bound_drops_unreported) + " oldest events (" +
                          std::to_string(s.dropped) + " in all)");
        s.bound_drops_unreported = 0;
    }
    return std::exchange(s.notes, {});
}

}  // namespace ssm_doctor
