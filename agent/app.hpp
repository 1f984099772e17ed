// SPDX-License-Identifier: Apache-2.0
// The program behind main(): one command line in, output written, exit code out.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ssm_doctor {

// Exit codes follow the monitoring-plugin convention.
enum class exit_code : int { ok = 0, warning = 1, critical = 2, unknown = 3 };

// `args` without the program name. Usage and configuration errors go to `err` and give 3.
int run_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ssm_doctor
