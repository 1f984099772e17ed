// SPDX-License-Identifier: Apache-2.0
// Dispatch of the commands: load the configuration once, run the check, judge, render; or
// hand over to the watch loop.
#include "agent/app.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "agent/check.hpp"
#include "agent/check_worker.hpp"
#include "agent/cli.hpp"
#include "agent/config.hpp"
#include "agent/logging.hpp"
#include "agent/publisher.hpp"
#include "agent/render.hpp"
#include "agent/targets.hpp"
#include "agent/verdict.hpp"
#include "agent/watch.hpp"

namespace ssm_doctor {
namespace {

int to_int(exit_code code) {
    return static_cast<int>(code);
}

std::shared_ptr<boost::asio::ssl::context> shipping_tls(const doctor_config& config) {
    return config.cloudwatch.log_group ? make_tls_client_context(config.tls_ca_file) : nullptr;
}

// The check's events to the event log and, with native shipping, to CloudWatch Logs within
// cloudwatch.flush_timeout; what is not delivered by then waits in the spool for the next run.
// Publishing never changes the exit code: the verdict is about Systems Manager.
void publish_check(const doctor_config& config, const report& r) {
    if (!config.events.enabled && !config.cloudwatch.log_group) {
        return;
    }
    try {
        event_publisher publisher(config, shipping_tls(config));
        publisher.publish_check(r);
        publisher.flush(config.cloudwatch.flush_timeout);
    } catch (const std::exception& e) {
        spdlog::warn("{} {}", kv("event", "publish_failed"), kv("error", e.what()));
    }
}

int run_check_command(const check_command& command, std::ostream& out, std::ostream& err) {
    check_options options;
    try {
        options.config = command.config_file ? load_config(*command.config_file, true)
                                             : load_config(default_config_path, false);
    } catch (const config_error& e) {
        err << "ssm-doctor: " << e.what() << '\n';
        return to_int(exit_code::unknown);
    }
    if (command.region) {
        if (!valid_region(*command.region)) {
            err << "ssm-doctor: --region: \"" << *command.region
                << "\" is not a region name (letters, digits and '-')\n";
            return to_int(exit_code::unknown);
        }
        options.region = command.region;
    }
    if (command.timeout) {
        options.config.probe_timeout = *command.timeout;
    }
    setup_logging(command.log_level.value_or(isatty(STDERR_FILENO) ? "warn" : "info"));

    observations seen;
    try {
        seen = run_check(options);
    } catch (const std::exception& e) {
        // Only setup errors reach here (tls.ca_file unusable); network trouble is data.
        err << "ssm-doctor: " << e.what() << '\n';
        return to_int(exit_code::unknown);
    }
    const verdict_policy policy{options.config.ec2messages_unsupported_regions};
    const report result = judge(std::move(seen), policy, std::chrono::system_clock::now());

    const auto format =
        command.output.value_or(isatty(STDOUT_FILENO) ? output_format::table : output_format::json);
    if (format == output_format::json) {
        out << report_to_json(result).dump(2) << '\n';
    } else {
        out << render_table(result, isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr);
    }
    out.flush();
    log_report(result);
    publish_check(options.config, result);
    return static_cast<int>(result.overall);
}

int run_watch_command(const watch_command& command, std::ostream& err) {
    setup_logging(command.log_level.value_or("info"));
    watch_options options;
    options.config_file = command.config_file;
    std::optional<publishing_observer> observer;  // outlives the loop that calls it
    std::optional<watch_loop> loop;
    try {
        // Events and shipping keep the settings the daemon started with; a reload changes the
        // checks, not where their events go (docs/cloudwatch.md).
        const auto config = options.config_file ? load_config(*options.config_file, true)
                                                : load_config(default_config_path, false);
        if (config.events.enabled || config.cloudwatch.log_group) {
            observer.emplace(config, shipping_tls(config));
            options.observer = &*observer;
        }
        loop.emplace(std::move(options));
    } catch (const std::exception& e) {
        // A daemon that cannot read its configuration at start does not start: systemd shows it.
        err << "ssm-doctor: " << e.what() << '\n';
        return to_int(exit_code::unknown);
    }
    const auto result = loop->run();
    return result.exit_code;
}

}  // namespace

int run_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    command parsed;
    try {
        parsed = parse_command_line(args);
    } catch (const usage_error& e) {
        err << "ssm-doctor: " << e.what() << '\n';
        return to_int(exit_code::unknown);
    }
    if (std::holds_alternative<help_command>(parsed)) {
        out << usage_text();
        return to_int(exit_code::ok);
    }
    if (std::holds_alternative<version_command>(parsed)) {
        out << "ssm-doctor " << SSM_DOCTOR_VERSION << '\n';
        return to_int(exit_code::ok);
    }
    if (const auto* watch = std::get_if<watch_command>(&parsed)) {
        return run_watch_command(*watch, err);
    }
    if (std::holds_alternative<observe_command>(parsed)) {
        return run_check_worker(std::cin, out);
    }
    return run_check_command(std::get<check_command>(parsed), out, err);
}

}  // namespace ssm_doctor
