// SPDX-License-Identifier: Apache-2.0
// Events per second through native shipping (spool, batches, SigV4, TLS) to the loopback fake
// CloudWatch Logs, and the spool's cost per event on that path.
#include <utility>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <spdlog/spdlog.h>

#include "agent/cloudwatch/shipper.hpp"
#include "probes/tls_probe.hpp"
#include "tests/fakes/fake_cloudwatch.hpp"
#include "tests/support/test_certs.hpp"

namespace {

using namespace std::chrono_literals;
using steady_clock = std::chrono::steady_clock;

double seconds_since(steady_clock::time_point start) {
    return std::chrono::duration<double>(steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    const long events = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 5000;
    const long bytes = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2048;
    if (events <= 0 || bytes <= 0) {
        std::fprintf(stderr, "usage: ship_bench [events] [bytes per event]\n");
        return 2;
    }
    spdlog::set_level(spdlog::level::warn);

    ssm_doctor::testing::fake_cloudwatch fake;
    fake.command({{"cmd", "create"}, {"group", "/bench"}, {"stream", "i-bench"}});
    ssm_doctor::testing::temp_dir dir;

    ssm_doctor::shipper_settings settings;
    settings.log_group = "/bench";
    settings.log_stream = "i-bench";
    settings.region = "us-east-1";
    settings.endpoint = ssm_doctor::logs_endpoint{"127.0.0.1", fake.logs_port()};
    settings.spool_dir = dir.path() / "spool";
    settings.spool_max_bytes = 1u << 30;
    settings.imds_endpoint = fake.imds_endpoint();
    ssm_doctor::shipper ship(settings, ssm_doctor::make_tls_client_context(fake.ca_file()));

    // 1. The spool: publish() is one durable append per event.
    const std::string filler(static_cast<std::size_t>(bytes), 'b');
    const auto base = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() -
                      60'000;
    auto start = steady_clock::now();
    for (long i = 0; i < events; ++i) {
        if (!ship.publish(base + i, filler)) {
            std::fprintf(stderr, "publish failed at event %ld\n", i);
            return 1;
        }
    }
    const double publish_s = seconds_since(start);

    // 2. Delivery: batches from the spool to the fake, which checks every signature.
    boost::asio::io_context io;
    start = steady_clock::now();
    auto future = boost::asio::co_spawn(
        io, ship.flush(io.get_executor(), steady_clock::now() + 600s), boost::asio::use_future);
    io.run();
    const auto result = future.get();
    const double flush_s = seconds_since(start);
    const auto stats = fake.stats();
    if (!result.drained || result.sent != static_cast<std::size_t>(events) ||
        stats["accepted"].get<long>() != events) {
        std::fprintf(stderr, "delivery incomplete: sent %zu of %ld, fake accepted %ld\n",
                     result.sent, events, stats["accepted"].get<long>());
        return 1;
    }
    const auto requests = ship.totals().requests;

    std::printf("events %ld, %ld bytes each\n", events, bytes);
    std::printf("publish (spool append): %.0f events/s, %.1f us per event\n", events / publish_s,
                publish_s * 1e6 / static_cast<double>(events));
    std::printf("flush to fake: %.0f events/s, %.1f MiB/s, %llu requests, %.1f ms per request\n",
                events / flush_s,
                static_cast<double>(events) * static_cast<double>(bytes) / flush_s / (1 << 20),
                static_cast<unsigned long long>(requests),
                flush_s * 1e3 / static_cast<double>(requests));
    std::printf("end to end: %.0f events/s\n", events / (publish_s + flush_s));
    return 0;
}
