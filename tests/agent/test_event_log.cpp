// SPDX-License-Identifier: Apache-2.0
// Tests of the rotating event log file: whole lines, rotation by renaming, keep count, writers
// in two threads and two "processes", and errors that name the path.
#include <utility>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/event_log.hpp"
#include "tests/support/file_size_limit.hpp"
#include "tests/support/test_certs.hpp"

using namespace ssm_doctor;
namespace fs = std::filesystem;
using ssm_doctor::testing::file_size_limit;
using ssm_doctor::testing::temp_dir;

namespace {

std::vector<std::string> lines_of(const fs::path& file) {
    std::vector<std::string> lines;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

std::string file_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

events_settings settings_in(const fs::path& dir, std::uint64_t max_bytes, int keep) {
    events_settings s;
    s.file = dir / "ssm-doctor" / "events.log";
    s.max_bytes = max_bytes;
    s.keep = keep;
    return s;
}

fs::path numbered(const fs::path& file, int n) {
    return file.string() + "." + std::to_string(n);
}

}  // namespace

TEST_CASE("the event log writes one line per event and creates its directory", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 1 << 20, 3);
    event_log_file log(settings);

    CHECK(fs::is_directory(settings.file.parent_path()));
    struct stat st {};
    REQUIRE(::stat(settings.file.parent_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777 & ~static_cast<mode_t>(0750)) == 0);  // nothing for other users

    log.append(R"({"event":"check"})");
    log.append("two\nlines\rin one");
    CHECK(lines_of(settings.file) ==
          std::vector<std::string>{R"({"event":"check"})", "two lines in one"});
    CHECK(log.path() == settings.file);
}

TEST_CASE("the event log rotates before a line would pass max_bytes", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 100, 3);
    event_log_file log(settings);
    const std::string line49(49, 'a');  // 50 bytes with its newline

    SECTION("a file may reach max_bytes exactly") {
        log.append(line49);
        log.append(line49);
        CHECK(fs::file_size(settings.file) == 100);
        CHECK_FALSE(fs::exists(numbered(settings.file, 1)));
    }
    SECTION("one byte more goes to a new file; the old one is renamed whole") {
        log.append(line49);
        log.append(line49);
        log.append("b");
        CHECK(lines_of(numbered(settings.file, 1)) == std::vector<std::string>{line49, line49});
        CHECK(lines_of(settings.file) == std::vector<std::string>{"b"});
    }
    SECTION("a line longer than max_bytes is written whole into a file of its own") {
        log.append("first");
        const std::string big(300, 'z');
        log.append(big);
        log.append("after");
        CHECK(lines_of(numbered(settings.file, 2)) == std::vector<std::string>{"first"});
        CHECK(lines_of(numbered(settings.file, 1)) == std::vector<std::string>{big});
        CHECK(lines_of(settings.file) == std::vector<std::string>{"after"});
    }
}

TEST_CASE("the event log keeps `keep` old files and deletes the oldest", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 100, 2);
    event_log_file log(settings);
    // 20 lines of 50 bytes: two per file, ten files written, three left (file, .1, .2).
    for (int i = 0; i < 20; ++i) {
        char text[64];
        std::snprintf(text, sizeof text, "line %02d %040d", i, 0);
        log.append(text);
    }
    CHECK(fs::exists(numbered(settings.file, 2)));
    CHECK_FALSE(fs::exists(numbered(settings.file, 3)));
    std::vector<std::string> kept;
    for (const auto& file :
         {numbered(settings.file, 2), numbered(settings.file, 1), settings.file}) {
        for (auto& line : lines_of(file)) {
            kept.push_back(line.substr(0, 7));
        }
    }
    CHECK(kept == std::vector<std::string>{"line 14", "line 15", "line 16", "line 17", "line 18",
                                           "line 19"});
}

TEST_CASE("a reader holding the file open reads its end after a rotation", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 100, 1);
    event_log_file log(settings);
    log.append(std::string(49, 'a'));
    std::ifstream reader(settings.file);  // a collector tailing the file
    std::string first;
    std::getline(reader, first);
    log.append(std::string(49, 'b'));
    log.append("c");  // rotates: events.log -> events.log.1
    std::string second;
    std::getline(reader, second);
    CHECK(second == std::string(49, 'b'));
    CHECK(lines_of(settings.file) == std::vector<std::string>{"c"});
}

TEST_CASE("appends from two threads never interleave within a line", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 4096, 1000);  // rotates often, deletes nothing
    event_log_file log(settings);
    constexpr int per_thread = 1500;
    auto writer = [&log](char tag) {
        for (int i = 0; i < per_thread; ++i) {
            log.append(std::string(1, tag) + "-" + std::to_string(i) + "-" +
                       std::string(40 + i % 50, tag));
        }
    };
    std::thread a(writer, 'a');
    std::thread b(writer, 'b');
    a.join();
    b.join();

    std::set<std::string> seen;
    std::size_t total = 0;
    for (const auto& item : fs::directory_iterator(settings.file.parent_path())) {
        for (const auto& line : lines_of(item.path())) {
            ++total;
            const char tag = line[0];
            const auto dash = line.find('-', 2);
            REQUIRE(dash != std::string::npos);
            const int i = std::stoi(line.substr(2, dash - 2));
            CHECK(line == std::string(1, tag) + "-" + std::to_string(i) + "-" +
                              std::string(40 + i % 50, tag));
            seen.insert(line.substr(0, dash));
        }
    }
    CHECK(total == 2 * per_thread);
    CHECK(seen.size() == 2 * per_thread);
    for (const auto& item : fs::directory_iterator(settings.file.parent_path())) {
        CHECK(fs::file_size(item.path()) <= 4096);
    }
}

TEST_CASE("a second writer notices a rotation made by the first", "[events]") {
    temp_dir dir;
    const auto settings = settings_in(dir.path(), 100, 3);
    event_log_file daemon(settings);
    event_log_file one_shot(settings);  // another process in production: its own descriptors
    one_shot.append("from the one-shot check");
    daemon.append(std::string(49, 'a'));
    const std::string rotates(30, 'r');
    daemon.append(rotates);  // 24 + 50 + 31 > 100
    one_shot.append("after the rotation");
    CHECK(lines_of(numbered(settings.file, 1)) ==
          std::vector<std::string>{"from the one-shot check", std::string(49, 'a')});
    CHECK(lines_of(settings.file) == std::vector<std::string>{rotates, "after the rotation"});

    SECTION("and a file removed by hand is created again") {
        fs::remove(settings.file);
        daemon.append("recreated");
        CHECK(lines_of(settings.file) == std::vector<std::string>{"recreated"});
    }
}

TEST_CASE("event log errors name the path and leave no partial line", "[events]") {
    temp_dir dir;

    SECTION("a directory that cannot be created") {
        std::ofstream(dir.path() / "plain-file") << "x";
        events_settings s;
        s.file = dir.path() / "plain-file" / "logs" / "events.log";
        try {
            event_log_file log(s);
            FAIL("no exception");
        } catch (const event_log_error& e) {
            CHECK_THAT(e.what(), Catch::Contains((dir.path() / "plain-file").string()));
            CHECK_THAT(e.what(), Catch::Contains("Not a directory"));
        }
    }
    SECTION("a path that is a directory") {
        events_settings s;
        s.file = dir.path();
        CHECK_THROWS_WITH(event_log_file(s), Catch::Contains(dir.path().string()));
    }
    SECTION("a write that fails half way is undone") {
        const auto settings = settings_in(dir.path(), 1 << 20, 3);
        event_log_file log(settings);
        log.append("whole line");
        const auto before = fs::file_size(settings.file);
        {
            file_size_limit limit(before + 10);  // room for part of the next line only
            CHECK_THROWS_WITH(log.append(std::string(100, 'p')),
                              Catch::Contains(settings.file.string()) && Catch::Contains("write"));
        }
        CHECK(fs::file_size(settings.file) == before);
        log.append("next line");
        CHECK(file_text(settings.file) == "whole line\nnext line\n");
    }
}
