// SPDX-License-Identifier: Apache-2.0
// One check: runs every probe concurrently under one deadline and assembles the observations.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/config.hpp"
#include "agent/observations.hpp"

namespace ssm_doctor {

// Where the check reads the host's state; tests point these at files of their own.
struct host_paths {
    std::filesystem::path proc_root = "/proc";
    std::filesystem::path resolv_conf = "/etc/resolv.conf";
    std::filesystem::path hosts_file = "/etc/hosts";
};

struct check_options {
    doctor_config config;
    std::optional<std::string> region;  // --region: wins over everything else
    host_paths host;
    bool ask_package_managers = true;
};

// Timing contract: IMDS is asked first (at most imds.timeout); the endpoint probes then run in
// parallel under probe.timeout. When the region is known without IMDS, both start at once.
// So the check ends within probe.timeout + imds.timeout whatever the network does.
//
// Throws std::runtime_error only for errors of the program's setup (an unreadable tls.ca_file);
// everything the network or the host does is recorded in the observations.
observations run_check(const check_options& options);

// Sets each endpoint address's kind, and whether it is inside the VPC where IMDS gave the whole
// block list of its family (otherwise in_vpc stays unknown). Part of run_check.
void classify_addresses(observations& seen);

}  // namespace ssm_doctor
