// SPDX-License-Identifier: Apache-2.0
// Time and CPU per read_socket_table call, sock_diag against /proc/net/tcp{,6}, on this host.
// Usage: socket_table_bench [calls] [loopback connections]
#include <utility>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <sys/resource.h>

#include "probes/sock_diag.hpp"
#include "probes/socket_table.hpp"

namespace {

namespace ip = boost::asio::ip;
using bench_clock = std::chrono::steady_clock;

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct figures {
    double mean_us = 0;
    double median_us = 0;
    double p99_us = 0;
    double cpu_us = 0;
    std::size_t sessions = 0;
    std::size_t notes = 0;
};

figures measure(std::size_t calls, const std::vector<unsigned short>& ports,
                const ssm_doctor::sock_diag_source& source) {
    for (int i = 0; i < 10; ++i) {  // warm the caches and the dentries of /proc
        (void)ssm_doctor::read_socket_table("/proc", ports, source);
    }
    std::vector<double> times;
    times.reserve(calls);
    figures f;
    const double cpu_start = cpu_seconds();
    for (std::size_t i = 0; i < calls; ++i) {
        const auto start = bench_clock::now();
        const auto o = ssm_doctor::read_socket_table("/proc", ports, source);
        times.push_back(
            std::chrono::duration<double, std::micro>(bench_clock::now() - start).count());
        f.sessions = o.sessions.size();
        f.notes = o.notes.size();
    }
    f.cpu_us = (cpu_seconds() - cpu_start) * 1e6 / static_cast<double>(calls);
    std::sort(times.begin(), times.end());
    double total = 0;
    for (double t : times) {
        total += t;
    }
    f.mean_us = total / static_cast<double>(calls);
    f.median_us = times[times.size() / 2];
    f.p99_us = times[std::min(times.size() - 1, times.size() * 99 / 100)];
    return f;
}

void print(const char* filter, const char* source, const figures& f) {
    std::printf("| %-26s | %-14s | %8zu | %9.1f | %9.1f | %9.1f | %9.1f |\n", filter, source,
                f.sessions, f.mean_us, f.median_us, f.p99_us, f.cpu_us);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t calls = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 500;
    const std::size_t connections = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4;
    if (calls == 0 || connections > 1000) {
        std::fprintf(stderr, "usage: socket_table_bench [calls > 0] [connections <= 1000]\n");
        return 2;
    }

    // Loopback connections to one listener, so the second filter has sessions to attribute.
    boost::asio::io_context io;
    ip::tcp::acceptor acceptor(io, ip::tcp::endpoint(ip::make_address("127.0.0.1"), 0));
    std::vector<std::unique_ptr<ip::tcp::socket>> ends;
    for (std::size_t i = 0; i < connections; ++i) {
        auto client = std::make_unique<ip::tcp::socket>(io);
        client->connect(acceptor.local_endpoint());
        ends.push_back(std::move(client));
        ends.push_back(std::make_unique<ip::tcp::socket>(acceptor.accept()));
    }
    const unsigned short port = acceptor.local_endpoint().port();

    const auto probe = ssm_doctor::read_sock_diag_tcp({443});
    if (!probe.ok) {
        std::fprintf(stderr, "sock_diag unavailable: %s\n", probe.describe().c_str());
        return 1;
    }

    const ssm_doctor::sock_diag_source netlink = [](const std::vector<unsigned short>& p) {
        return ssm_doctor::read_sock_diag_tcp(p);
    };
    const ssm_doctor::sock_diag_source text_only;

    std::printf("socket_table_bench: %zu calls each, %zu loopback connections to port %u\n\n",
                calls, connections, port);
    std::printf("| %-26s | %-14s | %8s | %9s | %9s | %9s | %9s |\n", "remote ports", "source",
                "sessions", "mean us", "median us", "p99 us", "CPU us");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    struct scenario {
        const char* name;
        std::vector<unsigned short> ports;
    };
    const std::vector<scenario> scenarios{
        {"443 (the daemon's filter)", {443}},
        {"443 + loopback listener", {443, port}},
    };
    int status = 0;
    for (const auto& s : scenarios) {
        const figures a = measure(calls, s.ports, netlink);
        const figures b = measure(calls, s.ports, text_only);
        print(s.name, "sock_diag", a);
        print(s.name, "/proc/net/tcp", b);
        // Both must see the same table, or the comparison means nothing.
        if (a.sessions != b.sessions || a.notes != 0 || b.notes != 0) {
            std::fprintf(stderr, "the sources disagree: %zu and %zu sessions, %zu and %zu notes\n",
                         a.sessions, b.sessions, a.notes, b.notes);
            status = 1;
        }
    }
    return status;
}
