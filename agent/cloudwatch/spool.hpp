// SPDX-License-Identifier: Apache-2.0
// The on-disk spool of events waiting for CloudWatch Logs: bounded in size, oldest dropped
// first (and counted), resumed after a restart.
//
// Layout (docs/cloudwatch.md): append-only segment files `segment-<first sequence>.log` of
// records [magic, length, sequence, timestamp, CRC-32, message], and a `state` file with the
// last sequence consumed (delivered or dropped) and the dropped counter, replaced atomically.
// Durability: append() returns after fdatasync, acknowledge() after the state file is synced,
// so a crash loses no appended event; it may deliver an acknowledged batch again (at least
// once). Memory holds an index of offsets (about 40 bytes per pending event), never messages.
//
// Limits: the bound counts the pending records (message plus 28 bytes each); the disk holds at
// most one segment (max_bytes / 16, between 4 KiB and 4 MiB) more, the delivered head of the
// oldest segment. Events lost to damage are counted from gaps in the sequence; a damaged last
// record counts as one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ssm_doctor {

struct spooled_event {
    std::uint64_t sequence = 0;     // increases by one per appended event, across restarts
    std::int64_t timestamp_ms = 0;  // event time, milliseconds since the epoch
    std::string message;            // the JSON line, UTF-8
};

// Not thread-safe: one owner (the shipper). Throws std::runtime_error naming the path when the
// directory cannot be created or written; a damaged record found on opening is skipped,
// counted in dropped() and described in a note, never a crash.
class event_spool {
public:
    // max_bytes below 4096 throws std::invalid_argument.
    event_spool(std::filesystem::path directory, std::uint64_t max_bytes);
    ~event_spool();
    event_spool(const event_spool&) = delete;
    event_spool& operator=(const event_spool&) = delete;

    // Durable when it returns (written and fsync'ed). Drops the oldest events while the spool
    // would exceed max_bytes. A message whose record alone exceeds max_bytes is dropped and
    // counted (callers fit events first: fit_event in agent/events.hpp). Throws
    // std::runtime_error naming the file when it cannot be written; nothing partial stays.
    void append(std::int64_t timestamp_ms, const std::string& message);

    // Oldest first, at most `max_events` events and `max_bytes` of messages (so a caller must
    // allow at least its largest message). Reads only the events returned; a record found
    // damaged is skipped, counted in dropped() and noted.
    std::vector<spooled_event> peek(std::size_t max_events, std::size_t max_bytes) const;

    // Removes every event with sequence <= `sequence` (they were delivered).
    void acknowledge(std::uint64_t sequence);

    std::size_t pending() const;
    std::uint64_t pending_bytes() const;  // of the pending records, headers included
    std::uint64_t dropped() const;  // events dropped for the bound since the spool was created
    std::vector<std::string> take_notes();  // problems found since the last call

private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace ssm_doctor
