// SPDX-License-Identifier: Apache-2.0
// Tests of the TCP socket table: parsing captured /proc text, owners in a fake /proc, a live
// socket.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/sock_diag.hpp"
#include "probes/socket_table.hpp"

namespace {

using ssm_doctor::parse_proc_net_endpoint;
using ssm_doctor::parse_proc_net_tcp;
using ssm_doctor::tcp_endpoint;
using ssm_doctor::tcp_session;
using ssm_doctor::tcp_socket_entry;
namespace fs = std::filesystem;

std::string read_data(const std::string& name) {
    const fs::path path = fs::path(SSM_DOCTOR_TEST_DATA) / "proc" / name;
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

tcp_endpoint endpoint(const char* address, unsigned short port) {
    return tcp_endpoint(boost::asio::ip::make_address(address), port);
}

// A directory under the system's temporary directory, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "ssm-doctor-proc-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
        // Open to every user, so a test that drops its file-system uid can still walk it.
        fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        // Directories made unreadable on purpose must be opened up again to be removed; each is
        // opened when the walk meets it, before the walk tries to enter it.
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(
                 path_, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (!it->is_symlink(ec) && it->is_directory(ec)) {
                fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
            }
        }
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

void write_file(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    REQUIRE(out);
    out << text;
}

// One process of the fake /proc: its exe and comm (either may be absent) and fd symlinks.
struct fake_process {
    int pid;
    std::string exe;
    std::string comm;
    std::vector<std::pair<int, std::string>> fds;
};

void add_process(const fs::path& root, const fake_process& p) {
    const fs::path dir = root / std::to_string(p.pid);
    fs::create_directories(dir / "fd");
    if (!p.exe.empty()) {
        fs::create_symlink(p.exe, dir / "exe");
    }
    if (!p.comm.empty()) {
        write_file(dir / "comm", p.comm);
    }
    for (const auto& [fd, target] : p.fds) {
        fs::create_symlink(target, dir / "fd" / std::to_string(fd));
    }
}

const tcp_session* find_inode(const ssm_doctor::socket_observation& o, std::uint64_t inode) {
    auto it = std::find_if(o.sessions.begin(), o.sessions.end(),
                           [&](const tcp_session& s) { return s.inode == inode; });
    return it == o.sessions.end() ? nullptr : &*it;
}

// Switches the file-system uid of this thread, so that root's DAC override stops applying to
// file access and a mode-000 directory really gives EACCES; restores it on destruction.
class fsuid_guard {
public:
    explicit fsuid_guard(uid_t uid) : previous_(::setfsuid(uid)) {}
    fsuid_guard(const fsuid_guard&) = delete;
    fsuid_guard& operator=(const fsuid_guard&) = delete;
    ~fsuid_guard() { ::setfsuid(previous_); }

private:
    uid_t previous_;
};

constexpr std::uint64_t ssmmessages_control = 4294967301;  // inodes from net_tcp.txt, tcp6
constexpr std::uint64_t ssm_keepalive = 52113;
constexpr std::uint64_t session_data = 5368709121;
constexpr std::uint64_t ec2messages_poll = 52877;
constexpr std::uint64_t mapped_v6 = 4294970000;
constexpr std::uint64_t ula_v6 = 73004;
constexpr std::uint64_t proxy_session = 61002;

}  // namespace

TEST_CASE("An instance's /proc/net/tcp yields every socket with addresses, state, uid and inode",
          "[sockets]") {
    std::vector<std::string> problems;
    const auto entries =
        parse_proc_net_tcp(read_data("net_tcp.txt"), false, std::endian::little, &problems);
    CHECK(problems.empty());
    REQUIRE(entries.size() == 12);

    SECTION("a listening socket has the unspecified remote address and state 0A") {
        CHECK(entries[0].local == endpoint("0.0.0.0", 22));
        CHECK(entries[0].remote == endpoint("0.0.0.0", 0));
        CHECK(entries[0].state == 0x0A);
        CHECK(entries[0].inode == 18342);
        CHECK(entries[1].local == endpoint("127.0.0.53", 53));
        CHECK(entries[1].uid == 101);
    }
    SECTION("an established session to an endpoint keeps an inode above 32 bits") {
        CHECK(entries[3].local == endpoint("10.0.1.25", 49822));
        CHECK(entries[3].remote == endpoint("10.0.2.41", 443));
        CHECK(entries[3].state == ssm_doctor::tcp_established);
        CHECK(entries[3].uid == 0);
        CHECK(entries[3].inode == ssmmessages_control);
        CHECK(entries[6].inode == session_data);
    }
    SECTION("TIME_WAIT lines are shorter and have inode 0") {
        CHECK(entries[5].state == 0x06);
        CHECK(entries[5].inode == 0);
        CHECK(entries[5].remote == endpoint("10.0.2.87", 443));
        CHECK(entries[9].remote == endpoint("169.254.169.254", 80));
    }
    SECTION("other states and users are kept as printed") {
        CHECK(entries[8].remote == endpoint("10.0.0.50", 3128));
        CHECK(entries[8].uid == 1000);
        CHECK(entries[10].state == 0x02);  // SYN_SENT
        CHECK(entries[11].state == 0x08);  // CLOSE_WAIT
    }
}

TEST_CASE("/proc/net/tcp6 keeps IPv4-mapped addresses as IPv6 and decodes all four words",
          "[sockets]") {
    std::vector<std::string> problems;
    const auto entries =
        parse_proc_net_tcp(read_data("net_tcp6.txt"), true, std::endian::little, &problems);
    CHECK(problems.empty());
    REQUIRE(entries.size() == 6);

    CHECK(entries[0].local == endpoint("::", 22));
    CHECK(entries[0].state == 0x0A);

    const auto& mapped = entries[1];
    REQUIRE(mapped.remote.address().is_v6());
    CHECK(mapped.remote.address().to_v6().is_v4_mapped());
    CHECK(mapped.remote == endpoint("::ffff:10.0.2.41", 443));
    CHECK(mapped.local == endpoint("::ffff:10.0.1.25", 50412));
    CHECK(mapped.inode == mapped_v6);

    CHECK(entries[2].local == endpoint("fd12:3456:789a:1::25", 46000));
    CHECK(entries[2].remote == endpoint("fd12:3456:789a:2::41", 443));
    CHECK(entries[4].remote == endpoint("::1", 39990));
    CHECK(entries[4].uid == 1000);
}

TEST_CASE("Text captured from loopback connections on a real host gives the sockets' own ports",
          "[sockets]") {
    std::vector<std::string> problems;
    SECTION("IPv4, with a TIME_WAIT line") {
        const auto entries = parse_proc_net_tcp(read_data("loopback_tcp.txt"), false,
                                                std::endian::little, &problems);
        CHECK(problems.empty());
        REQUIRE(entries.size() == 5);
        CHECK(entries[0].local == endpoint("127.0.0.1", 40989));
        CHECK(entries[1].local == endpoint("0.0.0.0", 2024));
        CHECK(entries[2].local == endpoint("127.0.0.1", 59208));
        CHECK(entries[2].remote == endpoint("127.0.0.1", 40989));
        CHECK(entries[2].inode == 29555);
        CHECK(entries[3].state == 0x06);
        CHECK(entries[4].remote == endpoint("127.0.0.1", 59208));
    }
    SECTION("IPv6, loopback and IPv4-mapped") {
        const auto entries = parse_proc_net_tcp(read_data("loopback_tcp6.txt"), true,
                                                std::endian::little, &problems);
        CHECK(problems.empty());
        REQUIRE(entries.size() == 5);
        CHECK(entries[0].local == endpoint("::", 39569));
        CHECK(entries[1].local == endpoint("::1", 50938));
        CHECK(entries[2].remote == endpoint("::ffff:127.0.0.1", 43710));
        CHECK(entries[4].local == endpoint("::ffff:127.0.0.1", 43710));
        CHECK(entries[4].inode == 29559);
    }
}

TEST_CASE("Address words decode in the byte order of the machine that printed them", "[sockets]") {
    SECTION("little-endian, as x86 prints") {
        CHECK(parse_proc_net_endpoint("0100007F:01BB", false, std::endian::little) ==
              endpoint("127.0.0.1", 443));
        CHECK(parse_proc_net_endpoint("00000000000000000000000001000000:0016", true,
                                      std::endian::little) == endpoint("::1", 22));
        CHECK(parse_proc_net_endpoint("b80d0120000000000000000001000000:ffff", true,
                                      std::endian::little) == endpoint("2001:db8::1", 65535));
    }
    SECTION("big-endian, as s390x prints") {
        CHECK(parse_proc_net_endpoint("7F000001:01BB", false, std::endian::big) ==
              endpoint("127.0.0.1", 443));
        CHECK(parse_proc_net_endpoint("20010DB8000000000000000000000001:0016", true,
                                      std::endian::big) == endpoint("2001:db8::1", 22));
    }
    SECTION("the overload without a byte order reads this host's own /proc") {
        // What the kernel of this host would print for 10.0.2.41:443.
        const std::array<unsigned char, 4> bytes{10, 0, 2, 41};
        std::uint32_t word = 0;
        std::memcpy(&word, bytes.data(), sizeof word);
        char line[200];
        std::snprintf(line, sizeof line,
                      "   0: %08X:C29E %08X:01BB 01 00000000:00000000 00:00000000 00000000     0"
                      "        0 777 1 0000000000000000 20 4 31 10 -1\n",
                      static_cast<unsigned>(word), static_cast<unsigned>(word));
        const auto entries = parse_proc_net_tcp(line, false, nullptr);
        REQUIRE(entries.size() == 1);
        CHECK(entries[0].remote == endpoint("10.0.2.41", 443));
    }
    SECTION("anything but exact hex of the right length is refused") {
        const bool v6 = GENERATE(false, true);
        const auto le = std::endian::little;
        CHECK_FALSE(parse_proc_net_endpoint("", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0100007F:1BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0100007F01BB0", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("100007F:01BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0100007G:01BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("+100007F:01BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0100007F:-1BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0x00007F:01BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0100007F: 1BB", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("000000000000000000000000010000000:0016", v6, le));
        CHECK_FALSE(parse_proc_net_endpoint("0000000000000000000000000100000:0016", v6, le));
    }
    SECTION("an address of the other family's length is refused") {
        CHECK_FALSE(parse_proc_net_endpoint("0100007F:01BB", true, std::endian::little));
        CHECK_FALSE(parse_proc_net_endpoint("00000000000000000000000001000000:0016", false,
                                            std::endian::little));
    }
}

TEST_CASE("Malformed lines are skipped and named by line number while good lines survive",
          "[sockets]") {
    const std::string text = read_data("net_tcp_malformed.txt");

    SECTION("every broken line is described") {
        std::vector<std::string> problems;
        const auto entries = parse_proc_net_tcp(text, false, std::endian::little, &problems);
        REQUIRE(entries.size() == 2);
        CHECK(entries[0].inode == ssmmessages_control);
        CHECK(entries[1].inode == session_data);
        const std::vector<std::string> expected{
            "line 3: 4 fields, expected at least 10",
            "line 4: bad local address \"01000G7F:0050\"",
            "line 5: bad remote address \"00000000000000000000000001000000:C003\"",
            "line 6: bad slot number \"hello\"",
            "line 8: bad remote address \"0100007F:C04\"",
            "line 9: bad state \"ZZ\"",
            "line 10: bad inode \"70x5\"",
            "line 11: bad uid \"-1\"",
            "line 13: 3 fields, expected at least 10",
            "line 14: bad inode \"99999999999999999999999\"",
        };
        CHECK(problems == expected);
    }
    SECTION("without a place for problems the same lines are kept") {
        const auto entries = parse_proc_net_tcp(text, false, std::endian::little, nullptr);
        CHECK(entries.size() == 2);
    }
    SECTION("tcp6 text read as tcp is refused line by line, not misread") {
        std::vector<std::string> problems;
        const auto entries =
            parse_proc_net_tcp(read_data("net_tcp6.txt"), false, std::endian::little, &problems);
        CHECK(entries.empty());
        REQUIRE(problems.size() == 6);
        CHECK_THAT(problems[0], Catch::StartsWith("line 2: bad local address \"0000000000"));
    }
}

TEST_CASE("Text that is not a socket table gives no entries and never crashes", "[sockets]") {
    std::vector<std::string> problems;
    SECTION("empty text, a header alone and blank lines say nothing") {
        CHECK(parse_proc_net_tcp("", false, &problems).empty());
        const std::string tcp6 = read_data("net_tcp6.txt");
        CHECK(parse_proc_net_tcp(tcp6.substr(0, tcp6.find('\n') + 1), true, &problems).empty());
        CHECK(parse_proc_net_tcp("\n\n  \n", false, &problems).empty());
        CHECK(problems.empty());
    }
    SECTION("text cut from the middle of a table, without its header, still parses") {
        const auto entries = parse_proc_net_tcp(
            "   2: 0100007F:E748 0100007F:A01D 01 00000000:00000000 00:00000000 00000000     0"
            "        0 29555 2 0000000000000000 20 0 0 10 -1",
            false, std::endian::little, &problems);
        REQUIRE(entries.size() == 1);
        CHECK(entries[0].remote == endpoint("127.0.0.1", 40989));
        CHECK(problems.empty());
    }
    SECTION("binary bytes and NULs") {
        using namespace std::string_literals;
        const std::string junk = "sl\0\xff\xfe garbage\n\0\0\0\n\x01\x02 : : : : : : : : : :\n"s;
        CHECK(parse_proc_net_tcp(junk, false, &problems).empty());
        CHECK(problems.size() == 3);
    }
    SECTION("a huge line is described briefly") {
        std::string line = "   0: " + std::string(100000, 'A') + " 2 3 4 5 6 7 8 9 10\n";
        CHECK(parse_proc_net_tcp(line, true, &problems).empty());
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].size() < 100);
        CHECK_THAT(problems[0], Catch::StartsWith("line 1: bad local address \"AAAA"));
    }
}

TEST_CASE("fd link targets give socket inodes and exe targets give program names", "[sockets]") {
    using ssm_doctor::parse_socket_link;
    using ssm_doctor::process_name_from_exe;
    SECTION("socket links") {
        CHECK(parse_socket_link("socket:[12345]") == 12345U);
        CHECK(parse_socket_link("socket:[18446744073709551615]") == 18446744073709551615U);
        CHECK_FALSE(parse_socket_link("socket:[18446744073709551616]"));
        CHECK_FALSE(parse_socket_link("socket:[]"));
        CHECK_FALSE(parse_socket_link("socket:[-1]"));
        CHECK_FALSE(parse_socket_link("socket:[12a]"));
        CHECK_FALSE(parse_socket_link("socket:[123"));
        CHECK_FALSE(parse_socket_link("socket:123]"));
        CHECK_FALSE(parse_socket_link("pipe:[12345]"));
        CHECK_FALSE(parse_socket_link("anon_inode:[eventpoll]"));
        CHECK_FALSE(parse_socket_link("/dev/null"));
    }
    SECTION("executable names") {
        CHECK(process_name_from_exe("/usr/bin/ssm-agent-worker") == "ssm-agent-worker");
        CHECK(process_name_from_exe("/snap/amazon-ssm-agent/7993/amazon-ssm-agent (deleted)") ==
              "amazon-ssm-agent");
        CHECK(process_name_from_exe("ssm-cli") == "ssm-cli");
        CHECK(process_name_from_exe("/opt/my tool (deleted)") == "my tool");
        CHECK(process_name_from_exe("") == "");
    }
}

TEST_CASE("Sessions in a fake /proc are attributed to the processes holding their sockets",
          "[sockets]") {
    temp_dir dir;
    const fs::path root = dir.path();
    fs::create_directories(root / "net");
    write_file(root / "net" / "tcp", read_data("net_tcp.txt"));
    write_file(root / "net" / "tcp6", read_data("net_tcp6.txt"));

    add_process(root, {1,
                       "/usr/lib/systemd/systemd",
                       "systemd\n",
                       {{0, "/dev/null"}, {4, "socket:[1701]"}, {7, "anon_inode:[eventpoll]"}}});
    add_process(root, {812,
                       "/usr/bin/amazon-ssm-agent (deleted)",
                       "amazon-ssm-agen\n",
                       {{3, "anon_inode:[eventpoll]"},
                        {4, "pipe:[22001]"},
                        {9, "socket:[" + std::to_string(ssm_keepalive) + "]"}}});
    add_process(root, {1043,
                       "/snap/amazon-ssm-agent/7993/ssm-agent-worker",
                       "ssm-agent-worke\n",
                       {{0, "/dev/null"},
                        {7, "socket:[" + std::to_string(ssmmessages_control) + "]"},
                        {12, "socket:[" + std::to_string(ec2messages_poll) + "]"}}});
    // No exe link: the name comes from comm, trimmed.
    add_process(
        root,
        {2210, "", "ssm-session-wor\n", {{5, "socket:[" + std::to_string(session_data) + "]"}}});
    add_process(root, {2300,
                       "/usr/lib/jvm/java-17/bin/java",
                       "java\n",
                       {{40, "socket:[" + std::to_string(mapped_v6) + "]"}}});
    add_process(
        root,
        {3001, "/usr/bin/curl", "curl\n", {{3, "socket:[" + std::to_string(proxy_session) + "]"}}});
    // Entries that are not processes, and one that exited after /proc was listed.
    fs::create_directories(root / "sys");
    fs::create_directories(root / "1abc" / "fd");
    fs::create_symlink("socket:[" + std::to_string(ula_v6) + "]", root / "1abc" / "fd" / "1");
    fs::create_symlink("1043", root / "self");
    fs::create_directories(root / "4000");
    // ula_v6 (73004) is held by no process, so every process is scanned.

    const std::vector<unsigned short> https{443};

    SECTION("established sessions to 443 from both tables, each with its owner") {
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.table_read);
        CHECK(o.attribution_complete);
        CHECK(o.notes.empty());
        REQUIRE(o.sessions.size() == 6);
        // In the order of the tables: SYN_SENT, CLOSE_WAIT and TIME_WAIT to 443 are left out.
        CHECK(o.sessions[0].inode == ssmmessages_control);
        CHECK(o.sessions[1].inode == ssm_keepalive);
        CHECK(o.sessions[2].inode == session_data);
        CHECK(o.sessions[3].inode == ec2messages_poll);
        CHECK(o.sessions[4].inode == mapped_v6);
        CHECK(o.sessions[5].inode == ula_v6);

        CHECK(o.sessions[0].local == endpoint("10.0.1.25", 49822));
        CHECK(o.sessions[0].remote == endpoint("10.0.2.41", 443));
        CHECK(o.sessions[0].pid == 1043);
        CHECK(o.sessions[0].process == "ssm-agent-worker");
        CHECK(o.sessions[3].pid == 1043);
        CHECK(o.sessions[3].process == "ssm-agent-worker");
        CHECK(o.sessions[1].pid == 812);
        CHECK(o.sessions[1].process == "amazon-ssm-agent");
        CHECK(o.sessions[2].pid == 2210);
        CHECK(o.sessions[2].process == "ssm-session-wor");
        CHECK(o.sessions[4].pid == 2300);
        CHECK(o.sessions[4].process == "java");
        CHECK(o.sessions[4].remote == endpoint("::ffff:10.0.2.41", 443));
        // Held by nobody (and not by the non-pid "1abc"): unattributed.
        CHECK(o.sessions[5].pid == 0);
        CHECK(o.sessions[5].process.empty());
    }
    SECTION("a proxy's port adds the sessions to the proxy") {
        const auto o = ssm_doctor::read_socket_table(root, {443, 3128});
        REQUIRE(o.sessions.size() == 7);
        const tcp_session* proxy = find_inode(o, proxy_session);
        REQUIRE(proxy != nullptr);
        CHECK(proxy->remote == endpoint("10.0.0.50", 3128));
        CHECK(proxy->pid == 3001);
        CHECK(proxy->process == "curl");
    }
    SECTION("no session to the ports of interest is a complete, empty answer") {
        const auto o = ssm_doctor::read_socket_table(root, {8443});
        CHECK(o.table_read);
        CHECK(o.attribution_complete);
        CHECK(o.sessions.empty());
        CHECK(o.notes.empty());
    }
    SECTION("a missing tcp6 (IPv6 disabled) is normal") {
        fs::remove(root / "net" / "tcp6");
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.table_read);
        CHECK(o.notes.empty());
        CHECK(o.sessions.size() == 4);
    }
    SECTION("both tables missing: nothing read, and both are named") {
        fs::remove(root / "net" / "tcp");
        fs::remove(root / "net" / "tcp6");
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK_FALSE(o.table_read);
        CHECK_FALSE(o.attribution_complete);
        CHECK(o.sessions.empty());
        const std::vector<std::string> expected{
            (root / "net" / "tcp").string() + ": No such file or directory",
            (root / "net" / "tcp6").string() + ": No such file or directory"};
        CHECK(o.notes == expected);
    }
    SECTION("a /proc root that does not exist is the same as missing tables") {
        const auto o = ssm_doctor::read_socket_table(root / "nowhere", https);
        CHECK_FALSE(o.table_read);
        CHECK(o.notes.size() == 2);
    }
    SECTION("a table that cannot be read is noted even when the other was read") {
        fs::remove(root / "net" / "tcp");
        fs::create_directory(root / "net" / "tcp");
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.table_read);
        CHECK(o.sessions.size() == 2);
        const std::vector<std::string> expected{(root / "net" / "tcp").string() +
                                                ": Is a directory"};
        CHECK(o.notes == expected);
    }
    SECTION("malformed lines are noted with the file and line, the rest is used") {
        std::string text = read_data("net_tcp.txt");
        for (int i = 0; i < 7; ++i) {
            text += "  12: not a socket line at all, but long enough to have ten fields\n";
        }
        write_file(root / "net" / "tcp", text);
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.sessions.size() == 6);
        REQUIRE(o.notes.size() == 6);
        const std::string tcp = (root / "net" / "tcp").string();
        CHECK(o.notes[0] == tcp + ": line 14: bad local address \"not\"");
        CHECK(o.notes[4] == tcp + ": line 18: bad local address \"not\"");
        CHECK(o.notes[5] == tcp + ": 2 more malformed lines skipped");
    }
    SECTION("an fd directory that cannot be opened makes attribution incomplete") {
        // A regular file where the fd directory should be gives ENOTDIR, whatever our privilege.
        fs::create_directories(root / "6000");
        write_file(root / "6000" / "fd", "");
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.table_read);
        CHECK_FALSE(o.attribution_complete);
        const std::vector<std::string> expected{
            "could not read the file descriptors of 1 process (Not a directory): sessions may "
            "be unattributed"};
        CHECK(o.notes == expected);
        REQUIRE(o.sessions.size() == 6);
        CHECK(o.sessions[0].pid == 1043);  // the readable processes are still attributed
        CHECK(o.sessions[5].pid == 0);
    }
    SECTION("an unreadable fd directory does not matter once every session has its owner") {
        add_process(root, {2400,
                           "/usr/bin/python3",
                           "python3\n",
                           {{6, "socket:[" + std::to_string(ula_v6) + "]"}}});
        fs::create_directories(root / "6000");
        write_file(root / "6000" / "fd", "");
        const auto o = ssm_doctor::read_socket_table(root, https);
        CHECK(o.attribution_complete);
        CHECK(o.notes.empty());
        const tcp_session* ula = find_inode(o, ula_v6);
        REQUIRE(ula != nullptr);
        CHECK(ula->pid == 2400);
        CHECK(ula->process == "python3");
    }
    SECTION("a connection not yet accepted (inode 0) is left unattributed without a scan") {
        add_process(root, {2400,
                           "/usr/bin/python3",
                           "python3\n",
                           {{6, "socket:[" + std::to_string(ula_v6) + "]"}}});
        fs::create_directories(root / "6000");
        write_file(root / "6000" / "fd", "");
        write_file(root / "net" / "tcp",
                   read_data("net_tcp.txt") +
                       "  12: 1901000A:01BB 2902000A:D0A4 01 00000000:00000000 00:00000000 "
                       "00000000     0        0 0 1 0000000000000000 20 4 31 10 -1\n");
        const auto o = ssm_doctor::read_socket_table(root, {443, 53412});
        REQUIRE(o.sessions.size() == 7);
        const tcp_session* queued = find_inode(o, 0);
        REQUIRE(queued != nullptr);
        CHECK(queued->remote == endpoint("10.0.2.41", 53412));
        CHECK(queued->pid == 0);
        // Every session that can have an owner has one, so the unreadable process is moot.
        CHECK(o.attribution_complete);
        CHECK(o.notes.empty());
    }
    SECTION("sock_diag refused: the text tables are read and one note says why") {
        ssm_doctor::sock_diag_source refused = [](const std::vector<unsigned short>&) {
            ssm_doctor::sock_diag_result r;
            r.step = "socket";
            r.error = EPERM;
            r.detail = "Operation not permitted";
            return r;
        };
        const auto o = ssm_doctor::read_socket_table(root, https, refused);
        CHECK(o.table_read);
        CHECK(o.attribution_complete);
        const std::vector<std::string> expected{
            "sock_diag unavailable (socket: Operation not permitted); read " +
            (root / "net" / "tcp").string() + " and tcp6 instead"};
        CHECK(o.notes == expected);
        REQUIRE(o.sessions.size() == 6);
        CHECK(o.sessions[0].inode == ssmmessages_control);
        CHECK(o.sessions[0].pid == 1043);
    }
    SECTION("sock_diag refused and no text table: both failures are noted") {
        fs::remove(root / "net" / "tcp");
        fs::remove(root / "net" / "tcp6");
        ssm_doctor::sock_diag_source garbled = [](const std::vector<unsigned short>&) {
            ssm_doctor::sock_diag_result r;
            r.step = "reply";
            r.detail = "message 1 at byte 0: length 8 is shorter than its own header";
            return r;
        };
        const auto o = ssm_doctor::read_socket_table(root, https, garbled);
        CHECK_FALSE(o.table_read);
        CHECK_FALSE(o.attribution_complete);
        REQUIRE(o.notes.size() == 3);
        CHECK(o.notes[0] ==
              "sock_diag unavailable (reply: message 1 at byte 0: length 8 is shorter than its own "
              "header); read " +
                  (root / "net" / "tcp").string() + " and tcp6 instead");
    }
    SECTION("sock_diag answered: its sessions are used and owners found under proc_root") {
        // Without text tables, every session below can only have come from the stand-in.
        fs::remove(root / "net" / "tcp");
        fs::remove(root / "net" / "tcp6");
        std::vector<unsigned short> asked;
        ssm_doctor::sock_diag_source answered = [&asked](const std::vector<unsigned short>& p) {
            asked = p;
            ssm_doctor::sock_diag_result r;
            r.ok = true;
            r.entries = {
                {endpoint("10.0.1.25", 49822), endpoint("10.0.2.41", 443), 1, 0,
                 ssmmessages_control},
                // Another state and another port: a source that did not filter is corrected.
                {endpoint("10.0.1.25", 49900), endpoint("10.0.2.41", 443), 8, 0, 99001},
                {endpoint("10.0.1.25", 49901), endpoint("10.0.2.41", 8443), 1, 0, 99002},
                {endpoint("::ffff:10.0.1.25", 50001), endpoint("::ffff:10.0.2.41", 443), 1, 0,
                 mapped_v6},
                {endpoint("10.0.1.25", 49902), endpoint("10.0.2.41", 443), 1, 0, 99003},
            };
            r.notes = {
                "sock_diag: the IPv4 socket table changed during each of 3 dumps; the last "
                "is used and may miss or repeat a connection"};
            return r;
        };
        const auto o = ssm_doctor::read_socket_table(root, https, answered);
        CHECK(asked == https);
        CHECK(o.table_read);
        CHECK(o.attribution_complete);
        REQUIRE(o.notes.size() == 1);
        CHECK(o.notes[0].starts_with("sock_diag: the IPv4 socket table changed"));
        REQUIRE(o.sessions.size() == 3);
        CHECK(o.sessions[0].inode == ssmmessages_control);
        CHECK(o.sessions[0].pid == 1043);
        CHECK(o.sessions[0].process == "ssm-agent-worker");
        CHECK(o.sessions[1].inode == mapped_v6);
        CHECK(o.sessions[1].remote == endpoint("::ffff:10.0.2.41", 443));
        CHECK(o.sessions[1].pid == 2300);
        CHECK(o.sessions[2].inode == 99003);
        CHECK(o.sessions[2].pid == 0);  // held by no process in the fake tree
    }
    SECTION("an empty source means the text tables only, without a note") {
        const auto o = ssm_doctor::read_socket_table(root, https, ssm_doctor::sock_diag_source{});
        CHECK(o.notes.empty());
        CHECK(o.sessions.size() == 6);
    }
    SECTION("fd directories denied to us give one note that says how to fix it") {
        for (int pid : {6001, 6002}) {
            add_process(root, {pid, "/usr/sbin/sshd", "sshd\n", {{3, "socket:[18342]"}}});
            fs::permissions(root / std::to_string(pid) / "fd", fs::perms::none);
        }
        const fs::path denied_fd = root / "6001" / "fd";
        // Root reads a mode-000 directory anyway (CAP_DAC_OVERRIDE). Dropping the file-system
        // uid to nobody takes those capabilities off file access for this thread, so the
        // permission-denied branch is reached for real as root too.
        std::optional<fsuid_guard> as_nobody;
        if (::geteuid() == 0) {
            as_nobody.emplace(65534);
        }
        errno = 0;
        const int probe = ::open(denied_fd.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const int probe_error = errno;
        if (probe >= 0) {
            ::close(probe);
        }
        const auto o = ssm_doctor::read_socket_table(root, https);
        as_nobody.reset();
        if (probe >= 0 || probe_error != EACCES) {
            // Neither mode 000 nor a dropped fsuid denies access here (a user namespace without
            // CAP_SETUID, say): the degraded branch cannot be reached this way, so check only
            // that the answer does not claim what it could not see, and say so.
            WARN("could not make an fd directory unreadable; permission branch not exercised");
            CHECK(o.attribution_complete);
            CHECK(o.notes.empty());
            return;
        }
        CHECK(o.table_read);
        CHECK_FALSE(o.attribution_complete);
        const std::vector<std::string> expected{
            "could not read the file descriptors of 2 processes (permission denied): sessions "
            "may be unattributed; run as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"};
        CHECK(o.notes == expected);
        const tcp_session* control = find_inode(o, ssmmessages_control);
        REQUIRE(control != nullptr);
        CHECK(control->pid == 1043);
    }
}

TEST_CASE("A live loopback connection is found with this test's own pid and name", "[sockets]") {
    namespace ip = boost::asio::ip;
    boost::asio::io_context io;
    const auto loopback = GENERATE(as<std::string>{}, "127.0.0.1", "::1");
    boost::system::error_code ec;
    ip::tcp::acceptor acceptor(io);
    const ip::tcp::endpoint listen_on(ip::make_address(loopback), 0);
    acceptor.open(listen_on.protocol(), ec);
    if (!ec) {
        acceptor.bind(listen_on, ec);
    }
    if (ec && loopback == "::1") {
        WARN("IPv6 loopback unavailable here: " << ec.message());
        return;
    }
    REQUIRE_FALSE(ec);
    acceptor.listen();
    const unsigned short port = acceptor.local_endpoint().port();
    ip::tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    ip::tcp::socket server = acceptor.accept();

    const auto o = ssm_doctor::read_socket_table("/proc", {port});
    REQUIRE(o.table_read);
    const auto mine = std::find_if(o.sessions.begin(), o.sessions.end(), [&](const tcp_session& s) {
        return s.local == client.local_endpoint();
    });
    REQUIRE(mine != o.sessions.end());
    CHECK(mine->remote == acceptor.local_endpoint());
    CHECK(mine->inode != 0);
    CHECK(mine->pid == ::getpid());
    const std::string exe = fs::read_symlink("/proc/self/exe").filename().string();
    CHECK(mine->process == exe);
    CHECK(mine->process == "test_sockets");
    // The accepted end is established too, but its remote port is the client's.
    for (const auto& s : o.sessions) {
        CHECK(s.remote.port() == port);
    }
}
