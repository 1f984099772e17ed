#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails unless the systemd units in UNIT_DIR pass `systemd-analyze verify` without a message and
# each service's exposure (`systemd-analyze security --offline=true`) is 2.5 or lower.
#   tests/packaging/check_units.sh UNIT_DIR BINARY
# verify requires ExecStart's program to exist, so it checks copies of the units in which
# /usr/bin/ssm-doctor is replaced by BINARY; nothing else is changed.
set -euo pipefail
unit_dir=${1:?usage: check_units.sh UNIT_DIR BINARY}
binary=${2:?usage: check_units.sh UNIT_DIR BINARY}
max_exposure=2.5
units=(ssm-doctor.service ssm-doctor.timer ssm-doctor-watch.service)
services=(ssm-doctor.service ssm-doctor-watch.service)

command -v systemd-analyze >/dev/null || { echo "check_units: systemd-analyze is missing (systemd)" >&2; exit 1; }
[ -x "$binary" ] || { echo "check_units: $binary is not an executable file" >&2; exit 1; }
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

for unit in "${units[@]}"; do
    [ -f "$unit_dir/$unit" ] || { echo "check_units: FAIL: $unit_dir/$unit is missing" >&2; exit 1; }
    sed "s|/usr/bin/ssm-doctor|$binary|g" "$unit_dir/$unit" >"$work/$unit"
    if ! grep -q '^ExecStart=/usr/bin/ssm-doctor ' "$unit_dir/$unit" && [[ $unit == *.service ]]; then
        echo "check_units: FAIL: $unit does not start /usr/bin/ssm-doctor" >&2
        failed=1
    fi
done

# Keys are sorted within each section (a key may repeat), so that a reader finds each at once.
for unit in "${units[@]}"; do
    unsorted=$(awk '/^\[/ { previous = "" } /^[A-Za-z]+=/ { key = $0; sub(/=.*/, "", key);
        if (previous != "" && key < previous) print FILENAME ": " key " after " previous;
        previous = key }' "$unit_dir/$unit")
    if [ -n "$unsorted" ]; then
        echo "check_units: FAIL: keys out of order: $unsorted" >&2
        failed=1
    fi
done

# verify: any message at all is a failure, not only those that change its exit status.
if ! messages=$(cd "$work" && systemd-analyze verify --man=no "${units[@]}" 2>&1) || [ -n "$messages" ]; then
    echo "check_units: FAIL: systemd-analyze verify:" >&2
    echo "$messages" >&2
    failed=1
else
    echo "check_units: systemd-analyze verify: ${units[*]} clean"
fi

for unit in "${services[@]}"; do
    report=$(systemd-analyze security --offline=true --no-pager "$unit_dir/$unit" 2>&1) || true
    exposure=$(sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p" <<<"$report")
    if [ -z "$exposure" ]; then
        echo "check_units: FAIL: no exposure figure for $unit:" >&2
        echo "$report" >&2
        failed=1
        continue
    fi
    echo "check_units: exposure of $unit: $exposure (at most $max_exposure)"
    if awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
        echo "check_units: FAIL: $unit is exposed above $max_exposure; what is open:" >&2
        grep '✗' <<<"$report" >&2 || true
        failed=1
    fi
done
exit "$failed"
