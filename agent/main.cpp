// SPDX-License-Identifier: Apache-2.0
// Entry point: hands the command line to run_program and returns its exit code.
#include <iostream>
#include <string>
#include <vector>

#include "agent/app.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    return ssm_doctor::run_program(args, std::cout, std::cerr);
}
