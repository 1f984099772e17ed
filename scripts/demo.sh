#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The first thing to run: installs what is missing, builds, starts the lab with a scenario
# (default: the article's, agent 3.3.380.0 with ssm and ssmmessages endpoints only), runs
# `ssm-doctor check` inside it, prints the table, and removes the lab.
#   scripts/demo.sh [SCENARIO]     scripts/demo.sh --list
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: the lab builds network namespaces and needs root" >&2
    exit 1
fi
scripts/install-deps.sh
if [ "${1:-}" = "--list" ]; then
    exec python3 tests/lab/lab.py list
fi
scenario=${1:-article}
scripts/build.sh >/dev/null
build_dir=${BUILD_DIR:-build}
exec python3 tests/lab/lab.py run "$scenario" --binary "$build_dir/ssm-doctor" \
    --standin "$build_dir/tests/lab_agent_standin" --output table
