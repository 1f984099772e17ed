// SPDX-License-Identifier: Apache-2.0
// The spool's cost per event: append (each one fdatasync'ed), reopen with recovery, and
// peek + acknowledge in PutLogEvents-sized batches. Usage: spool_bench [events] [bytes] [dir]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "agent/cloudwatch/spool.hpp"

namespace fs = std::filesystem;
using bench_clock = std::chrono::steady_clock;

namespace {

struct row {
    const char* step;
    std::size_t events;
    double seconds;
};

void print(const row& r) {
    std::printf("| %-28s | %7zu | %9.3f | %11.0f | %9.1f |\n", r.step, r.events, r.seconds,
                r.events / r.seconds, r.seconds * 1e6 / static_cast<double>(r.events));
}

double since(bench_clock::time_point start) {
    return std::chrono::duration<double>(bench_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t events = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 5000;
    const std::size_t bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2048;
    const fs::path base = argc > 3 ? fs::path(argv[3]) : fs::temp_directory_path();
    if (events == 0 || bytes < 16) {
        std::fprintf(stderr, "usage: spool_bench [events > 0] [bytes >= 16] [directory]\n");
        return 2;
    }
    const fs::path dir = base / ("ssm-doctor-spool-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    // Large enough that nothing is dropped: this measures the steady path.
    const std::uint64_t bound = static_cast<std::uint64_t>(events) * (bytes + 64) + (1u << 20);

    std::string message(bytes, 'x');
    message.front() = '{';
    message.back() = '}';

    std::printf("spool_bench: %zu events of %zu bytes in %s\n\n", events, bytes,
                dir.string().c_str());
    std::printf("| %-28s | %7s | %9s | %11s | %9s |\n", "step", "events", "seconds", "events/s",
                "us/event");
    std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(9, '-').c_str(),
                std::string(11, '-').c_str(), std::string(13, '-').c_str(),
                std::string(11, '-').c_str());
    try {
        {
            ssm_doctor::event_spool spool(dir, bound);
            const auto start = bench_clock::now();
            for (std::size_t i = 0; i < events; ++i) {
                spool.append(static_cast<std::int64_t>(i), message);
            }
            print({"append (fdatasync each)", events, since(start)});
        }
        const auto reopen_start = bench_clock::now();
        ssm_doctor::event_spool spool(dir, bound);
        print({"reopen (recovery, index)", spool.pending(), since(reopen_start)});

        // PutLogEvents limits: 10,000 events, 1 MiB including 26 bytes per event.
        const auto start = bench_clock::now();
        std::size_t delivered = 0;
        std::size_t batches = 0;
        while (spool.pending() > 0) {
            const auto batch = spool.peek(10'000, (1u << 20) - 10'000 * 26);
            if (batch.empty()) {
                break;
            }
            spool.acknowledge(batch.back().sequence);
            delivered += batch.size();
            ++batches;
        }
        print({"peek + acknowledge", delivered, since(start)});
        std::printf("\n%zu batches; dropped %llu\n", batches,
                    static_cast<unsigned long long>(spool.dropped()));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "spool_bench: %s\n", e.what());
        fs::remove_all(dir);
        return 1;
    }
    fs::remove_all(dir);
    return 0;
}
