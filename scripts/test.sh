#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite from a fresh Debian 12 machine: dependencies, format check, build, every
# test including the lab scenarios and the units under a real systemd (both need root; with
# SSM_DOCTOR_LAB_REQUIRED=1 and SSM_DOCTOR_SYSTEMD_REQUIRED=1 a skip is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/check-format.sh
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --parallel "$(nproc)" "$@"
