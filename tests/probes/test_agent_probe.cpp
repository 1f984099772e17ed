// SPDX-License-Identifier: Apache-2.0
// Tests of the agent probe: /proc and package-tool parsers on captured text, the command
// runner, and probe_agent against a fake /proc tree, fake agent binaries and fake logs.
#include <cerrno>
#include <csignal>
#include <fstream>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probes/agent_probe.hpp"
#include "probes/command.hpp"

using namespace ssm_doctor;
using namespace std::literals;
using std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

agent_version v(unsigned a, unsigned b, unsigned c, unsigned d) {
    return {{a, b, c, d}};
}

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "ssmprobe-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

void write(const fs::path& path, std::string_view text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void write_script(const fs::path& path, std::string_view body) {
    write(path, "#!/bin/sh\n" + std::string(body));
    fs::permissions(path, fs::perms::owner_all);
}

// A /proc/<pid>/stat line with `ticks` in field 22 and the other fields plausible.
std::string stat_line(int pid, std::string_view comm, std::uint64_t ticks) {
    std::string line = std::to_string(pid) + " (" + std::string(comm) + ") S 1 " +
                       std::to_string(pid) + " " + std::to_string(pid) +
                       " 0 -1 4194560 3716 0 12 0 41 30 0 0 20 0 9 0 " + std::to_string(ticks) +
                       " 1464532992 6001 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 "
                       "17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    return line;
}

// True when no child of this process is left, neither running nor a zombie.
bool no_children_left() {
    return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

// Gone, or a zombie waiting for an init that does not reap: either way no longer running.
bool process_ended(pid_t pid) {
    if (::kill(pid, 0) != 0) {
        return errno == ESRCH;
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    return close != std::string::npos && text.substr(close + 2, 1) == "Z";
}

bool has_note_containing(const agent_observation& seen, std::string_view part) {
    for (const auto& note : seen.notes) {
        if (note.find(part) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string all_notes(const agent_observation& seen) {
    std::string out;
    for (const auto& note : seen.notes) {
        out += note + "\n";
    }
    return out;
}

// A fake /proc: a boot time, agent processes of every kind and some that are not the agent.
struct fake_host {
    temp_dir dir;
    fs::path proc = dir.path() / "proc";
    fs::path logs = dir.path() / "log";
    fs::path bin = dir.path() / "bin";

    fake_host() {
        fs::create_directories(proc);
        fs::create_directories(logs);
        fs::create_directories(bin);
        write(proc / "stat", "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1700000000\nprocesses 7\n");
        fs::create_directory_symlink("100", proc / "self");  // not a pid: ignored
        fs::create_directories(proc / "net");
    }

    void process(int pid, std::string_view exe, std::string_view comm, std::uint64_t ticks) {
        const fs::path p = proc / std::to_string(pid);
        fs::create_directories(p);
        if (!exe.empty()) {
            fs::create_symlink(exe, p / "exe");
        }
        write(p / "comm", std::string(comm) + "\n");
        write(p / "stat", stat_line(pid, comm, ticks));
    }

    // exe that cannot be read as a link: readlink fails with EINVAL, as it fails with EACCES
    // for another user's process when not root (the tests run as root too).
    void unreadable_exe_process(int pid, std::string_view comm, std::uint64_t ticks) {
        const fs::path p = proc / std::to_string(pid);
        fs::create_directories(p);
        write(p / "exe", "");
        write(p / "comm", std::string(comm) + "\n");
        write(p / "stat", stat_line(pid, comm, ticks));
    }

    agent_probe_options options() const {
        agent_probe_options o;
        o.binary = bin / "amazon-ssm-agent";
        o.log_dir = logs;
        o.proc_root = proc;
        o.version_timeout = 2000ms;
        o.ask_package_managers = false;
        return o;
    }
};

const char* const good_binary =
    "if [ \"$#\" -eq 1 ] && [ \"$1\" = -version ]; then\n"
    "  echo 'SSM Agent version: 3.3.1142.0'\n  exit 0\nfi\n"
    "echo \"unexpected arguments: $*\" >&2\nexit 2\n";

}  // namespace

TEST_CASE("the start time is field 22 of a stat line, counted after the last ')'", "[agent]") {
    SECTION("a captured line of a real agent") {
        const std::string captured =
            "412 (amazon-ssm-agen) S 1 412 412 0 -1 4194560 4471 0 51 0 61 57 0 0 20 0 8 0 "
            "1523 1475588096 5350 18446744073709551615 4194304 21606113 140723718035232 0 0 0 "
            "1006254591 0 2143420159 0 0 0 17 1 0 0 0 0 0 23728128 24495016 39784448 "
            "140723718040421 140723718040446 140723718040446 140723718041573 0\n";
        CHECK(parse_proc_stat_start_ticks(captured) == 1523u);
    }
    SECTION("a name with blanks and parentheses") {
        CHECK(parse_proc_stat_start_ticks(stat_line(7, "a) S 1 2 (b", 99)) == 99u);
        CHECK(parse_proc_stat_start_ticks(stat_line(7, "x y z", 123456789012)) == 123456789012u);
        CHECK(parse_proc_stat_start_ticks(stat_line(7, "", 5)) == 5u);
        CHECK(parse_proc_stat_start_ticks(stat_line(7, ")))", 6)) == 6u);
    }
    SECTION("garbage gives nothing") {
        CHECK_FALSE(parse_proc_stat_start_ticks(""));
        CHECK_FALSE(parse_proc_stat_start_ticks("412 amazon-ssm-agen S 1 412"));
        CHECK_FALSE(parse_proc_stat_start_ticks("412 (amazon-ssm-agen) S 1 412 412 0"));
        CHECK_FALSE(parse_proc_stat_start_ticks(") ( S 1 2 3"));
        CHECK_FALSE(parse_proc_stat_start_ticks(std::string(5000, ')')));
        std::string bad = stat_line(7, "w", 10);
        bad.replace(bad.find(" 10 "), 4, " 1x ");
        CHECK_FALSE(parse_proc_stat_start_ticks(bad));
        std::string negative = stat_line(7, "w", 10);
        negative.replace(negative.find(" 10 "), 4, " -10 ");
        CHECK_FALSE(parse_proc_stat_start_ticks(negative));
        std::string huge = stat_line(7, "w", 10);
        huge.replace(huge.find(" 10 "), 4, " 99999999999999999999999 ");
        CHECK_FALSE(parse_proc_stat_start_ticks(huge));
        CHECK_FALSE(parse_proc_stat_start_ticks(std::string("7 (w) S\0 1 2", 12)));
    }
}

TEST_CASE("the boot time is the btime line of /proc/stat", "[agent]") {
    CHECK(parse_boot_time("cpu  10 0 20 3000\ncpu0 1 2 3 4\nintr 1 2\nbtime 1725600000\n"
                          "processes 9000\n") == 1725600000);
    CHECK(parse_boot_time("btime 5") == 5);
    CHECK_FALSE(parse_boot_time(""));
    CHECK_FALSE(parse_boot_time("cpu 1 2\nbtimes 17\n"));
    CHECK_FALSE(parse_boot_time("btime\n"));
    CHECK_FALSE(parse_boot_time("btime abc\n"));
    CHECK_FALSE(parse_boot_time("btime -5\n"));
    CHECK_FALSE(parse_boot_time("btime 1 2\n"));

    SECTION("start time = boot time + ticks / ticks per second") {
        const auto started = process_start_time(1'700'000'000, 12345, 100);
        CHECK(started.time_since_epoch() ==
              std::chrono::duration_cast<std::chrono::system_clock::duration>(1'700'000'123'450ms));
    }
}

TEST_CASE("the environment splits at NUL bytes and the first of a name counts", "[agent]") {
    const auto env = parse_environ(
        "PATH=/usr/bin:/bin\0HTTPS_PROXY=http://proxy:3128\0EMPTY=\0noequals\0=value\0"
        "HTTPS_PROXY=http://second:1\0WITH_EQ=a=b\0\0"sv);
    CHECK(env.size() == 4);
    CHECK(env.at("PATH") == "/usr/bin:/bin");
    CHECK(env.at("HTTPS_PROXY") == "http://proxy:3128");
    CHECK(env.at("EMPTY").empty());
    CHECK(env.at("WITH_EQ") == "a=b");
    CHECK(parse_environ("").empty());
    CHECK(parse_environ("A=1"sv).at("A") == "1");  // no NUL after the last entry
}

TEST_CASE("the agent's proxy follows Go's choice of variables", "[agent]") {
    SECTION("upper case wins over lower case") {
        const auto proxy = proxy_from_environment(
            parse_environ("https_proxy=http://low:1\0HTTPS_PROXY=http://up:2\0no_proxy=a\0"
                          "NO_PROXY=b\0"sv),
            42);
        REQUIRE(proxy);
        CHECK(proxy->https_proxy == "http://up:2");
        CHECK(proxy->no_proxy == "b");
        CHECK(proxy->from_pid == 42);
    }
    SECTION("an empty upper-case value falls through to the lower-case one") {
        const auto proxy = proxy_from_environment(
            parse_environ("HTTPS_PROXY=\0https_proxy=http://low:1\0no_proxy=169.254.169.254\0"sv),
            1);
        REQUIRE(proxy);
        CHECK(proxy->https_proxy == "http://low:1");
        CHECK(proxy->no_proxy == "169.254.169.254");
    }
    SECTION("HTTP_PROXY is never used for https") {
        CHECK_FALSE(proxy_from_environment(
            parse_environ("HTTP_PROXY=http://p:3128\0http_proxy=http://p:3128\0"sv), 1));
    }
    SECTION("NO_PROXY alone is no proxy") {
        CHECK_FALSE(proxy_from_environment(parse_environ("NO_PROXY=*\0"sv), 1));
    }
}

TEST_CASE("agent executables are recognised by exe basename or by cut comm", "[agent]") {
    CHECK(exe_basename("/usr/bin/amazon-ssm-agent") == "amazon-ssm-agent");
    CHECK(exe_basename("/usr/bin/ssm-agent-worker (deleted)") == "ssm-agent-worker");
    CHECK(exe_basename("/snap/amazon-ssm-agent/9882/amazon-ssm-agent") == "amazon-ssm-agent");
    CHECK(exe_basename("ssm-session-worker") == "ssm-session-worker");
    CHECK(exe_basename("/usr/bin/") == "");
    CHECK(is_agent_executable("ssm-document-worker"));
    CHECK_FALSE(is_agent_executable("ssm-cli"));
    CHECK_FALSE(is_agent_executable("amazon-ssm-agen"));

    CHECK(agent_name_from_comm("amazon-ssm-agen") == "amazon-ssm-agent");
    CHECK(agent_name_from_comm("ssm-agent-worke") == "ssm-agent-worker");
    CHECK(agent_name_from_comm("ssm-session-wor") == "ssm-session-worker");
    CHECK(agent_name_from_comm("ssm-document-wo") == "ssm-document-worker");
    CHECK(agent_name_from_comm("amazon-ssm-agent") == "amazon-ssm-agent");
    CHECK(agent_name_from_comm("ssm-session") == "");  // short: not a cut name
    CHECK(agent_name_from_comm("ssm-session-woX") == "");
    CHECK(agent_name_from_comm("") == "");
    CHECK(agent_name_from_comm("bash") == "");
}

TEST_CASE("package tools' answers are read from captured output", "[agent]") {
    SECTION("rpm") {
        const auto known = parse_rpm_query("3.3.1142.0\n", 0);
        CHECK(known.installed);
        CHECK(known.version == v(3, 3, 1142, 0));
        CHECK_FALSE(parse_rpm_query("package amazon-ssm-agent is not installed\n", 1).installed);
        const auto odd = parse_rpm_query("three\n", 0);
        CHECK(odd.installed);
        CHECK_FALSE(odd.version);
        CHECK_FALSE(parse_rpm_query("", 0).installed);
    }
    SECTION("dpkg-query") {
        const auto known = parse_dpkg_query("installed 3.3.1142.0-1", 0);
        CHECK(known.installed);
        CHECK(known.version == v(3, 3, 1142, 0));
        CHECK(parse_dpkg_query("installed 1:3.2.582.0-1ubuntu1", 0).version == v(3, 2, 582, 0));
        CHECK_FALSE(parse_dpkg_query("config-files 3.3.1142.0-1", 0).installed);
        CHECK_FALSE(parse_dpkg_query("not-installed ", 0).installed);
        CHECK_FALSE(parse_dpkg_query("dpkg-query: no packages found matching amazon-ssm-agent\n", 1)
                        .installed);
        CHECK(parse_dpkg_query("unpacked 3.3.1142.0-1", 0).installed);
        CHECK_FALSE(parse_dpkg_query("installed", 0).version);
    }
    SECTION("snap list") {
        const auto known = parse_snap_list(
            "Name              Version     Rev    Tracking       Publisher   Notes\n"
            "amazon-ssm-agent  3.3.1142.0  9882   latest/stable  aws\xe2\x9c\x93        classic\n",
            0);
        CHECK(known.installed);
        CHECK(known.version == v(3, 3, 1142, 0));
        CHECK_FALSE(parse_snap_list("error: no matching snaps installed\n", 1).installed);
        CHECK_FALSE(parse_snap_list("Name Version Rev\nother-snap 1.0 3\n", 0).installed);
    }
}

TEST_CASE("commands run without a shell, with a limit, and are always reaped", "[agent]") {
    const auto until = [](auto span) { return steady_clock::now() + span; };

    SECTION("exit status and both output streams are captured") {
        const auto result =
            run_command({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, until(5s));
        CHECK(result.outcome == command_outcome::exited);
        CHECK(result.exit_status == 3);
        CHECK(result.output.find("out") != std::string::npos);
        CHECK(result.output.find("err") != std::string::npos);
    }
    SECTION("arguments reach the program as they are") {
        const auto result = run_command({"/bin/echo", "a b", "$HOME", "*"}, until(5s));
        CHECK(result.output == "a b $HOME *\n");
    }
    SECTION("the environment is minimal") {
        const auto result = run_command({"/usr/bin/env"}, until(5s));
        CHECK(result.output.find("LC_ALL=C") != std::string::npos);
        CHECK(result.output.find("HOME=") == std::string::npos);
    }
    SECTION("descriptors of this process do not leak into the child") {
        const int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
        REQUIRE(leaked > 2);
        const auto result = run_command({"/bin/sh", "-c", "ls /proc/self/fd | wc -l"}, until(5s));
        ::close(leaked);
        // 0, 1, 2 and the directory ls reads: nothing of ours.
        CHECK(result.output == "4\n");
    }
    SECTION("output past the limit is dropped, and the child is not blocked by it") {
        const auto result = run_command(
            {"/bin/sh", "-c", "head -c 300000 /dev/zero; echo done >&2"}, until(10s), 1000);
        CHECK(result.outcome == command_outcome::exited);
        CHECK(result.exit_status == 0);
        CHECK(result.output.size() == 1000);
        CHECK(result.output_truncated);
    }
    SECTION("a missing program is not started") {
        const auto result = run_command({"/nonexistent/amazon-ssm-agent", "-version"}, until(5s));
        CHECK(result.outcome == command_outcome::not_started);
        CHECK_THAT(result.error, Catch::Contains("No such file or directory"));
    }
    SECTION("nothing runs when the limit has passed") {
        const auto result = run_command({"/bin/true"}, steady_clock::now() - 1ms);
        CHECK(result.outcome == command_outcome::not_started);
    }
    SECTION("a hanging program and what it started are killed at the limit") {
        temp_dir dir;
        const fs::path pid_file = dir.path() / "sleeper.pid";
        const auto started = steady_clock::now();
        const auto result =
            run_command({"/bin/sh", "-c",
                         "sleep 1000 & echo $! > '" + pid_file.string() + "'; wait; echo late"},
                        until(300ms));
        const auto took = steady_clock::now() - started;
        CHECK(result.outcome == command_outcome::timed_out);
        CHECK(took >= 250ms);
        CHECK(took < 5s);
        CHECK(result.output.find("late") == std::string::npos);
        CHECK(no_children_left());
        std::ifstream in(pid_file);
        pid_t sleeper = 0;
        in >> sleeper;
        REQUIRE(sleeper > 0);
        // SIGKILL is delivered at once, but the orphan's end is seen by others a little later.
        bool ended = false;
        for (int i = 0; i < 100 && !ended; ++i) {
            ended = process_ended(sleeper);
            if (!ended) {
                ::usleep(10'000);
            }
        }
        CHECK(ended);
    }
    SECTION("a program that closes its output but keeps running is killed too") {
        const auto result =
            run_command({"/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 1000"}, until(300ms));
        CHECK(result.outcome == command_outcome::timed_out);
        CHECK(no_children_left());
    }
    SECTION("a program killed by a signal is reported as such") {
        const auto result = run_command({"/bin/sh", "-c", "kill -TERM $$"}, until(5s));
        CHECK(result.outcome == command_outcome::signaled);
        CHECK(result.exit_status == SIGTERM);
    }
    CHECK(no_children_left());
}

TEST_CASE("probe_agent reads processes, start times and proxy from a fake /proc", "[agent]") {
    fake_host host;
    const long tps = ::sysconf(_SC_CLK_TCK);
    host.process(100, "/usr/bin/amazon-ssm-agent", "amazon-ssm-agen", 50 * tps);
    host.process(101, "/usr/bin/ssm-agent-worker (deleted)", "ssm-agent-worke", 51 * tps);
    host.process(102, "/usr/bin/bash", "bash", 1);
    host.process(103, "/usr/bin/ssm-session-worker", "ssm-session-wor", 90 * tps);
    host.process(104, "/usr/bin/ssm-cli", "ssm-cli", 1);
    fs::create_directories(host.proc / "2");  // a kernel thread: no exe link
    write(host.proc / "2" / "comm", "kthreadd\n");
    write(host.proc / "100" / "environ",
          "PATH=/usr/bin\0https_proxy=http://low:1\0"
          "HTTPS_PROXY=http://user:secret@proxy.internal:3128\0"
          "NO_PROXY=169.254.169.254,.internal\0HTTP_PROXY=http://other:80\0"sv);

    const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
    INFO(all_notes(seen));

    REQUIRE(seen.processes.size() == 3);
    CHECK(seen.processes[0].pid == 100);
    CHECK(seen.processes[0].name == "amazon-ssm-agent");
    CHECK(seen.processes[0].exe == "/usr/bin/amazon-ssm-agent");
    CHECK(seen.processes[1].name == "ssm-agent-worker");
    CHECK(seen.processes[1].exe == "/usr/bin/ssm-agent-worker");
    CHECK(seen.processes[2].name == "ssm-session-worker");
    REQUIRE(seen.processes[0].started);
    CHECK(*seen.processes[0].started == std::chrono::system_clock::time_point(1'700'000'050s));
    REQUIRE(seen.processes[2].started);
    CHECK(*seen.processes[2].started - *seen.processes[0].started == 40s);

    REQUIRE(seen.proxy);
    CHECK(seen.proxy->https_proxy == "http://user:secret@proxy.internal:3128");
    CHECK(seen.proxy->no_proxy == "169.254.169.254,.internal");
    CHECK(seen.proxy->from_pid == 100);
    CHECK(seen.notes.empty());

    // Nothing installed: no binary, no log, no package tools asked.
    CHECK_FALSE(seen.installed);
    CHECK(seen.method == install_method::unknown);
    CHECK_FALSE(seen.version);
    CHECK(seen.version_source.empty());
    CHECK_FALSE(seen.hibernate_log_written);
}

TEST_CASE("probe_agent falls back to comm, once noted, when exe cannot be read", "[agent]") {
    fake_host host;
    host.unreadable_exe_process(200, "amazon-ssm-agen", 10);
    host.unreadable_exe_process(201, "ssm-agent-worke", 11);
    host.unreadable_exe_process(202, "sshd", 12);
    write(host.proc / "201" / "environ", "https_proxy=http://p:3128\0"sv);
    fs::create_directories(host.proc / "200" / "environ");  // unreadable: EISDIR

    const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
    INFO(all_notes(seen));
    REQUIRE(seen.processes.size() == 2);
    CHECK(seen.processes[0].name == "amazon-ssm-agent");
    CHECK(seen.processes[0].exe.empty());
    CHECK(seen.processes[1].name == "ssm-agent-worker");

    int comm_notes = 0;
    for (const auto& note : seen.notes) {
        if (note.find("comm") != std::string::npos) {
            ++comm_notes;
            CHECK_THAT(note, Catch::Contains("names of 2 agent process(es)"));
            CHECK_THAT(note, Catch::Contains("for 3 process(es)"));
            CHECK_THAT(note, Catch::Contains("Invalid argument"));
        }
    }
    CHECK(comm_notes == 1);

    SECTION("the worker's environment answers when the supervisor's cannot be read") {
        REQUIRE(seen.proxy);
        CHECK(seen.proxy->https_proxy == "http://p:3128");
        CHECK(seen.proxy->from_pid == 201);
        CHECK_FALSE(has_note_containing(seen, "environ"));
    }
}

TEST_CASE("an unreadable environment is a note, and proxy secrets stay out of notes", "[agent]") {
    fake_host host;
    host.process(300, "/usr/bin/amazon-ssm-agent", "amazon-ssm-agen", 10);

    SECTION("unreadable environ") {
        fs::create_directories(host.proc / "300" / "environ");
        const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
        CHECK_FALSE(seen.proxy);
        CHECK(has_note_containing(seen, (host.proc / "300" / "environ").string()));
        CHECK(has_note_containing(seen, "Is a directory"));
        CHECK(has_note_containing(seen, "proxy settings are unknown"));
    }
    SECTION("an unusable proxy URL is noted without its password") {
        write(host.proc / "300" / "environ", "HTTPS_PROXY=ftp://admin:hunter2@proxy:21\0"sv);
        const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
        REQUIRE(seen.proxy);
        CHECK(has_note_containing(seen, "ftp://proxy:21"));
        for (const auto& note : seen.notes) {
            CHECK(note.find("hunter2") == std::string::npos);
        }
    }
    SECTION("a process that vanished mid-scan is neither listed nor noted") {
        fs::remove(host.proc / "300" / "stat");
        const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
        CHECK(seen.processes.empty());
        CHECK(seen.notes.empty());
    }
    SECTION("garbage in stat and a missing btime leave the start unknown, noted") {
        write(host.proc / "300" / "stat", "garbage\n");
        auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
        REQUIRE(seen.processes.size() == 1);
        CHECK_FALSE(seen.processes[0].started);
        CHECK(has_note_containing(seen, "has no start time"));

        write(host.proc / "300" / "stat", stat_line(300, "amazon-ssm-agen", 10));
        write(host.proc / "stat", "cpu 1 2 3\n");
        seen = probe_agent(host.options(), steady_clock::now() + 10s);
        REQUIRE(seen.processes.size() == 1);
        CHECK_FALSE(seen.processes[0].started);
        CHECK(has_note_containing(seen, "no btime line"));
    }
    SECTION("a proc root that cannot be listed is noted") {
        auto options = host.options();
        options.proc_root = host.dir.path() / "no-proc";
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.processes.empty());
        CHECK(has_note_containing(seen, "cannot list processes"));
    }
}

TEST_CASE("probe_agent asks the binary for its version first", "[agent]") {
    fake_host host;
    auto options = host.options();
    write(host.logs / "amazon-ssm-agent.log", "INFO amazon-ssm-agent - v3.1.1927.0\n");

    SECTION("a good binary answers") {
        write_script(options.binary, good_binary);
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        INFO(all_notes(seen));
        CHECK(seen.installed);
        CHECK(seen.version == v(3, 3, 1142, 0));
        CHECK(seen.version_source == "binary");
        CHECK(seen.method == install_method::other);
        CHECK(seen.notes.empty());
    }
    SECTION("a binary printing garbage is noted and the log answers") {
        write_script(options.binary, "printf 'hello\\001world\\n'\n");
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.version == v(3, 1, 1927, 0));
        CHECK(seen.version_source == "log");
        CHECK(has_note_containing(seen, "printed no version"));
        CHECK(has_note_containing(seen, "\"hello world\""));
    }
    SECTION("a binary that hangs is killed within the version timeout") {
        write_script(options.binary, "sleep 1000\n");
        options.version_timeout = 300ms;
        const auto started = steady_clock::now();
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        const auto took = steady_clock::now() - started;
        CHECK(took < 5s);
        CHECK(seen.version_source == "log");
        CHECK(has_note_containing(seen, "did not finish within"));
        CHECK(has_note_containing(seen, "was killed"));
        CHECK(no_children_left());
    }
    SECTION("the probe's deadline cuts the version timeout short") {
        write_script(options.binary, "sleep 1000\n");
        options.version_timeout = 60s;
        const auto started = steady_clock::now();
        const auto seen = probe_agent(options, started + 300ms);
        const auto took = steady_clock::now() - started;
        CHECK(took < 5s);
        CHECK(has_note_containing(seen, "was killed"));
        CHECK(no_children_left());
    }
    SECTION("a deadline already past runs nothing") {
        write_script(options.binary, good_binary);
        const auto seen = probe_agent(options, steady_clock::now() - 1s);
        CHECK(seen.version_source == "log");
        CHECK(has_note_containing(seen, "deadline had passed"));
    }
    SECTION("a binary that cannot be executed is noted") {
        write(options.binary, "not a program");
        fs::permissions(options.binary, fs::perms::owner_read | fs::perms::owner_write);
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.installed);
        CHECK(seen.version_source == "log");
        CHECK(has_note_containing(seen, "cannot run"));
    }
}

TEST_CASE("probe_agent reads the version from the log's last start line", "[agent]") {
    fake_host host;
    auto options = host.options();
    const fs::path log = host.logs / "amazon-ssm-agent.log";

    SECTION("several starts: the last wins") {
        write(log,
              "2024-09-01 08:00:00 INFO [amazon-ssm-agent] amazon-ssm-agent - v3.1.1927.0\n"
              "2024-09-01 08:00:01 INFO [ssm-agent-worker] ssm-agent-worker - v3.1.1927.0\n"
              "2024-09-06 10:00:00 INFO [amazon-ssm-agent] amazon-ssm-agent - v3.3.1142.0\n"
              "2024-09-06 10:00:01 INFO [ssm-agent-worker] ssm-agent-worker - v3.3.1142.0\n");
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.version == v(3, 3, 1142, 0));
        CHECK(seen.version_source == "log");
        // A log alone does not make the agent installed.
        CHECK_FALSE(seen.installed);
        CHECK(seen.method == install_method::unknown);
    }
    SECTION("only the tail of a big log is read") {
        std::string text = "INFO [amazon-ssm-agent] amazon-ssm-agent - v3.0.0.0\n";
        const std::string filler(199, 'x');
        while (text.size() < 3 * 1024 * 1024) {
            text += filler + "\n";
        }
        write(log, text);
        auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK_FALSE(seen.version);  // the only start line is far before the tail

        text += "INFO [amazon-ssm-agent] amazon-ssm-agent - v3.3.1142.0\n" + filler + "\n";
        write(log, text);
        seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.version == v(3, 3, 1142, 0));
    }
    SECTION("an unreadable log is noted") {
        fs::create_directories(log);
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK_FALSE(seen.version);
        CHECK(has_note_containing(seen, log.string()));
    }
}

TEST_CASE("probe_agent reports when hibernate.log was written", "[agent]") {
    fake_host host;
    const fs::path hibernate = host.logs / "hibernate.log";
    write(hibernate, "Entering SSM Agent hibernate - ...\n");
    const timespec times[2] = {{1'725'600'000, 0}, {1'725'612'345, 500'000'000}};
    REQUIRE(::utimensat(AT_FDCWD, hibernate.c_str(), times, 0) == 0);

    const auto seen = probe_agent(host.options(), steady_clock::now() + 10s);
    REQUIRE(seen.hibernate_log_written);
    CHECK(seen.hibernate_log_written->time_since_epoch() ==
          std::chrono::duration_cast<std::chrono::system_clock::duration>(1'725'612'345'500ms));
}

TEST_CASE("the install method comes from the executable's path or the package", "[agent]") {
    fake_host host;
    auto options = host.options();

    SECTION("a supervisor running from /snap is a snap, and its executable gives the version") {
        // The fake /snap executable lives in the temp dir; only its recorded path says /snap.
        const fs::path real = host.dir.path() / "rev-9882" / "amazon-ssm-agent";
        write_script(real, good_binary);
        host.process(400, real.string(), "amazon-ssm-agen", 10);
        auto seen = probe_agent(options, steady_clock::now() + 10s);
        INFO(all_notes(seen));
        REQUIRE(seen.processes.size() == 1);
        CHECK(seen.installed);
        CHECK(seen.version_source == "binary");
        CHECK(seen.method == install_method::other);

        fs::remove_all(host.proc / "400");
        host.process(400, "/snap/amazon-ssm-agent/9882/amazon-ssm-agent", "amazon-ssm-agen", 10);
        seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.method == install_method::snap);
    }
    SECTION("an absent binary under /snap/ proves nothing") {
        options.binary = "/snap/amazon-ssm-agent/current/amazon-ssm-agent-absent-in-tests";
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.method == install_method::unknown);
        CHECK_FALSE(seen.installed);
    }
    SECTION("no binary, no process, no package: unknown") {
        const auto seen = probe_agent(options, steady_clock::now() + 10s);
        CHECK(seen.method == install_method::unknown);
        CHECK_FALSE(seen.installed);
        CHECK(seen.notes.empty());
    }
    CHECK(to_string(install_method::rpm) == "rpm");
    CHECK(to_string(install_method::deb) == "deb");
    CHECK(to_string(install_method::snap) == "snap");
    CHECK(to_string(install_method::other) == "other");
    CHECK(to_string(install_method::unknown) == "unknown");
}

TEST_CASE("asking the real package tools ends on time and never throws", "[agent]") {
    // Whatever this machine has installed: the answers are data, and the time is bounded.
    fake_host host;
    auto options = host.options();
    options.ask_package_managers = true;
    options.version_timeout = 3s;
    const auto started = steady_clock::now();
    const auto seen = probe_agent(options, started + 8s);
    CHECK(steady_clock::now() - started < 15s);
    CHECK(no_children_left());
    if (seen.installed) {
        CHECK(seen.method != install_method::unknown);
    }
}
