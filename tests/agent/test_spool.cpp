// SPDX-License-Identifier: Apache-2.0
// Tests of the on-disk spool: order, restart, the size bound, damaged and torn records, write
// failures and limits of peek.
#include <utility>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/resource.h>

#include "agent/cloudwatch/spool.hpp"
#include "tests/support/file_size_limit.hpp"
#include "tests/support/test_certs.hpp"

using namespace ssm_doctor;
namespace fs = std::filesystem;
using ssm_doctor::testing::file_size_limit;
using ssm_doctor::testing::temp_dir;

namespace {

std::string message(int i, std::size_t size = 100) {
    std::string text = "{\"n\":" + std::to_string(i) + ",\"pad\":\"";
    text += std::string(size > text.size() + 2 ? size - text.size() - 2 : 0, 'p');
    return text + "\"}";
}

std::vector<std::uint64_t> sequences(const std::vector<spooled_event>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) {
        out.push_back(e.sequence);
    }
    return out;
}

std::vector<fs::path> segment_files(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& item : fs::directory_iterator(dir)) {
        if (item.path().filename().string().starts_with("segment-")) {
            out.push_back(item.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool any_note_contains(const std::vector<std::string>& notes, const std::string& text) {
    return std::any_of(notes.begin(), notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

void flip_byte(const fs::path& file, std::uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x10));
}

constexpr std::uint64_t record_overhead = 28;

}  // namespace

TEST_CASE("the spool gives events back oldest first and forgets acknowledged ones", "[spool]") {
    temp_dir dir;
    event_spool spool(dir.path() / "spool", 1 << 20);
    for (int i = 1; i <= 5; ++i) {
        spool.append(1000 + i, message(i));
    }
    CHECK(spool.pending() == 5);
    CHECK(spool.pending_bytes() == 5 * (100 + record_overhead));

    const auto all = spool.peek(100, 1 << 20);
    REQUIRE(sequences(all) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(all[2].timestamp_ms == 1003);
    CHECK(all[2].message == message(3));

    SECTION("peek is limited by count") {
        CHECK(sequences(spool.peek(2, 1 << 20)).size() == 2);
    }
    SECTION("peek is limited by message bytes") {
        CHECK(sequences(spool.peek(100, 250)) == std::vector<std::uint64_t>{1, 2});
        CHECK(spool.peek(100, 99).empty());
    }
    SECTION("peek does not remove anything") {
        spool.peek(100, 1 << 20);
        CHECK(spool.pending() == 5);
    }
    SECTION("acknowledging removes up to the sequence") {
        spool.acknowledge(2);
        CHECK(spool.pending() == 3);
        CHECK(spool.pending_bytes() == 3 * (100 + record_overhead));
        CHECK(spool.peek(1, 1 << 20)[0].sequence == 3);
        spool.acknowledge(1);  // an old acknowledgement changes nothing
        CHECK(spool.pending() == 3);
    }
    SECTION("acknowledging everything leaves no segment behind") {
        spool.acknowledge(1'000'000);  // past the end: clamped
        CHECK(spool.pending() == 0);
        CHECK(spool.peek(10, 1 << 20).empty());
        CHECK(segment_files(dir.path() / "spool").empty());
        spool.append(7, "next");
        CHECK(spool.peek(10, 1 << 20)[0].sequence == 6);
    }
    CHECK(spool.dropped() == 0);
}

TEST_CASE("a restart during an outage resumes the spool where it was", "[spool]") {
    temp_dir dir;
    const auto path = dir.path() / "spool";
    {
        event_spool spool(path, 1 << 20);
        for (int i = 1; i <= 5; ++i) {
            spool.append(i, message(i));
        }
        spool.acknowledge(2);
    }  // the process stops with three events undelivered

    event_spool spool(path, 1 << 20);
    CHECK(spool.take_notes().empty());
    CHECK(spool.pending() == 3);
    const auto events = spool.peek(10, 1 << 20);
    CHECK(sequences(events) == std::vector<std::uint64_t>{3, 4, 5});
    CHECK(events[0].message == message(3));
    CHECK(events[0].timestamp_ms == 3);

    SECTION("sequences continue after the restart") {
        spool.append(6, message(6));
        CHECK(spool.peek(10, 1 << 20).back().sequence == 6);
    }
    SECTION("sequences continue even when everything had been delivered") {
        spool.acknowledge(5);
        CHECK(segment_files(path).empty());
        {
            event_spool reopened(path, 1 << 20);
            reopened.append(6, message(6));
            CHECK(reopened.peek(10, 1 << 20)[0].sequence == 6);
        }
    }
}

TEST_CASE("a spool at its bound drops the oldest events and counts them", "[spool]") {
    temp_dir dir;
    const auto path = dir.path() / "spool";
    const std::uint64_t bound = 16 * 1024;
    const std::size_t size = 1000;  // 1028 bytes a record: 15 fit in 16 KiB
    {
        event_spool spool(path, bound);
        for (int i = 1; i <= 20; ++i) {
            spool.append(i, message(i, size));
            CHECK(spool.pending_bytes() <= bound);
        }
        CHECK(spool.pending() == 15);
        CHECK(spool.dropped() == 5);
        const auto events = spool.peek(100, 1 << 20);
        CHECK(events.front().sequence == 6);
        CHECK(events.back().sequence == 20);
        const auto notes = spool.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK_THAT(notes[0], Catch::Contains("dropped the 5 oldest events"));
        CHECK(spool.take_notes().empty());  // reported once

        std::uint64_t on_disk = 0;
        for (const auto& f : segment_files(path)) {
            on_disk += fs::file_size(f);
        }
        // The pending records plus at most one segment's delivered head (segments of
        // max(bound / 16, 4 KiB)).
        CHECK(on_disk <= bound + std::max<std::uint64_t>(bound / 16, 4096));
    }
    SECTION("the dropped counter survives a restart") {
        event_spool spool(path, bound);
        CHECK(spool.dropped() == 5);
        CHECK(spool.pending() == 15);
        CHECK(spool.peek(1, 1 << 20)[0].sequence == 6);
    }
}

TEST_CASE("segments roll over and are deleted once delivered", "[spool]") {
    temp_dir dir;
    const auto path = dir.path() / "spool";
    event_spool spool(path, 64 * 1024);  // segments of 4 KiB
    for (int i = 1; i <= 40; ++i) {
        spool.append(i, message(i, 500));
    }
    const auto before = segment_files(path).size();
    CHECK(before >= 5);
    spool.acknowledge(30);
    CHECK(segment_files(path).size() < before);
    CHECK(sequences(spool.peek(100, 1 << 20)).front() == 31);
    CHECK(spool.pending() == 10);
}

TEST_CASE("a torn record at the end is ignored and cut off", "[spool]") {
    temp_dir dir;
    const auto path = dir.path() / "spool";
    {
        event_spool spool(path, 1 << 20);
        for (int i = 1; i <= 3; ++i) {
            spool.append(i, message(i));
        }
    }
    const auto segment = segment_files(path).back();
    const auto whole = fs::file_size(segment);
    SECTION("half a header") {
        std::ofstream(segment, std::ios::app | std::ios::binary) << std::string("SPR1\x40\x00", 6);
    }
    SECTION("a header whose message was not all written") {
        std::ifstream in(segment, std::ios::binary);
        std::string first(record_overhead + 50, '\0');
        in.read(first.data(), static_cast<std::streamsize>(first.size()));
        in.close();
        std::ofstream(segment, std::ios::app | std::ios::binary) << first;
    }

    {
        event_spool spool(path, 1 << 20);
        CHECK(any_note_contains(spool.take_notes(), "torn record"));
        CHECK(spool.dropped() == 0);
        CHECK(spool.pending() == 3);
        CHECK(fs::file_size(segment) == whole);
        spool.append(4, message(4));
    }
    event_spool spool(path, 1 << 20);
    CHECK(spool.take_notes().empty());
    CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{1, 2, 3, 4});
}

TEST_CASE("a damaged record is skipped and counted, the rest is kept", "[spool]") {
    temp_dir dir;
    const auto path = dir.path() / "spool";
    {
        event_spool spool(path, 1 << 20);
        for (int i = 1; i <= 5; ++i) {
            spool.append(i, message(i));
        }
    }
    const auto segment = segment_files(path).back();
    const std::uint64_t record = 100 + record_overhead;

    SECTION("a bit flip in a message in the middle") {
        flip_byte(segment, 2 * record + record_overhead + 10);  // record 3's message
        event_spool spool(path, 1 << 20);
        CHECK(any_note_contains(spool.take_notes(), "1 events lost to damage"));
        CHECK(spool.dropped() == 1);
        CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{1, 2, 4, 5});
        spool.append(6, message(6));
        CHECK(spool.peek(10, 1 << 20).back().sequence == 6);
    }
    SECTION("a bit flip in a length field") {
        flip_byte(segment, record + 5);  // record 2's length
        event_spool spool(path, 1 << 20);
        CHECK(spool.dropped() == 1);
        CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{1, 3, 4, 5});
    }
    SECTION("a bit flip in the last record") {
        flip_byte(segment, 4 * record + record_overhead + 1);
        event_spool spool(path, 1 << 20);
        CHECK(any_note_contains(spool.take_notes(), "damaged record"));
        CHECK(spool.dropped() == 1);
        CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{1, 2, 3, 4});
        spool.append(6, message(6));  // 5 is not used again
        CHECK(spool.peek(10, 1 << 20).back().sequence == 6);
    }
    SECTION("damage found while running is skipped by peek") {
        event_spool spool(path, 1 << 20);
        flip_byte(segment, record_overhead + 3);  // record 1's message
        CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{2, 3, 4, 5});
        CHECK(spool.dropped() == 1);
        CHECK(spool.pending() == 4);
        CHECK(any_note_contains(spool.take_notes(), "event 1 at offset 0 is damaged"));
    }
    SECTION("a damaged state file: nothing lost, delivered events may come again") {
        {
            event_spool spool(path, 1 << 20);
            spool.acknowledge(2);
        }
        std::ofstream(path / "state", std::ios::app) << "garbage";
        flip_byte(path / "state", 3);
        event_spool spool(path, 1 << 20);
        CHECK(any_note_contains(spool.take_notes(), "damaged"));
        CHECK(spool.pending() == 5);  // 1 and 2 come again: at least once, never lost
    }
}

TEST_CASE("an event larger than the bound is dropped and counted, not thrown", "[spool]") {
    temp_dir dir;
    event_spool spool(dir.path() / "spool", 8192);
    spool.append(1, message(1));
    spool.append(2, std::string(9000, 'h'));
    CHECK(spool.dropped() == 1);
    CHECK(spool.pending() == 1);
    CHECK(any_note_contains(spool.take_notes(), "9000 bytes exceeds the bound"));
    spool.append(3, message(3));
    CHECK(sequences(spool.peek(10, 1 << 20)) == std::vector<std::uint64_t>{1, 2});

    SECTION("a large event within the bound goes through whole") {
        temp_dir other;
        event_spool big(other.path(), 4 << 20);
        const std::string huge(1 << 20, 'H');
        big.append(1, huge);
        big.append(2, "small");
        const auto events = big.peek(10, 2 << 20);
        REQUIRE(events.size() == 2);
        CHECK(events[0].message == huge);
    }
}

TEST_CASE("spool errors name the directory", "[spool]") {
    temp_dir dir;
    SECTION("a directory that cannot be created") {
        std::ofstream(dir.path() / "plain-file") << "x";
        const auto path = dir.path() / "plain-file" / "spool";
        CHECK_THROWS_WITH(event_spool(path, 1 << 20),
                          Catch::Contains(path.string()) && Catch::Contains("Not a directory"));
    }
    SECTION("a bound too small to hold anything") {
        CHECK_THROWS_AS(event_spool(dir.path(), 100), std::invalid_argument);
    }
    SECTION("an append that fails half way leaves no partial record") {
        const auto path = dir.path() / "spool";
        {
            event_spool spool(path, 1 << 20);
            spool.append(1, message(1));
            const auto segment = segment_files(path).back();
            {
                file_size_limit limit(fs::file_size(segment) + 40);
                CHECK_THROWS_WITH(spool.append(2, message(2)),
                                  Catch::Contains(segment.string()) && Catch::Contains("append"));
            }
            CHECK(fs::file_size(segment) == 100 + record_overhead);
            CHECK(spool.pending() == 1);
            spool.append(3, message(3));
        }
        event_spool spool(path, 1 << 20);
        CHECK(spool.take_notes().empty());
        const auto events = spool.peek(10, 1 << 20);
        CHECK(sequences(events) == std::vector<std::uint64_t>{1, 2});
        CHECK(events[1].timestamp_ms == 3);
    }
}

TEST_CASE("thousands of events go through in batches, in order", "[spool]") {
    temp_dir dir;
    event_spool spool(dir.path(), 4 << 20);
    constexpr int count = 3000;
    for (int i = 1; i <= count; ++i) {
        spool.append(i, message(i, 300));
    }
    std::uint64_t expected = 1;
    while (spool.pending() > 0) {
        const auto batch = spool.peek(500, 64 * 1024);
        REQUIRE_FALSE(batch.empty());
        for (const auto& e : batch) {
            REQUIRE(e.sequence == expected);
            REQUIRE(e.message == message(static_cast<int>(expected), 300));
            ++expected;
        }
        spool.acknowledge(batch.back().sequence);
    }
    CHECK(expected == count + 1);
    CHECK(segment_files(dir.path()).empty());
}
