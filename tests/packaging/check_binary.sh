#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails unless BINARY can run on Amazon Linux 2023: only the shared libraries it has, no symbol
# version newer than its glibc 2.34 and GCC 11 libstdc++, and `--version` works.
#   tests/packaging/check_binary.sh BINARY
set -euo pipefail
binary=${1:?usage: check_binary.sh BINARY}
for tool in readelf objdump; do
    command -v "$tool" >/dev/null || { echo "check_binary: $tool is missing (binutils)" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "check_binary: $binary is not an executable file" >&2; exit 1; }
failed=0

# Shared libraries: glibc's, libstdc++, libgcc_s and OpenSSL 3, all on AL2023. (The sd_notify
# protocol is spoken directly, so libsystemd is not among them.)
allowed="libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 libssl.so.3 libcrypto.so.3
ld-linux-x86-64.so.2"
needed=$(readelf --dynamic --wide "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
[ -n "$needed" ] || { echo "check_binary: $binary has no NEEDED entries (static or unreadable?)" >&2; exit 1; }
for lib in $needed; do
    if ! grep -qxF "$lib" <<<"${allowed// /$'\n'}"; then
        echo "check_binary: FAIL: $binary needs $lib, which Amazon Linux 2023 may not have" >&2
        failed=1
    fi
done
echo "check_binary: NEEDED: $(echo $needed)"

# Symbol versions: the newest of each family must not pass Amazon Linux 2023's.
symbols=$(objdump --dynamic-syms "$binary")
if grep -q 'GLIBC_PRIVATE' <<<"$symbols"; then
    echo "check_binary: FAIL: $binary uses GLIBC_PRIVATE symbols" >&2
    failed=1
fi
summary=()
for limit in GLIBC_2.34 GLIBCXX_3.4.29 CXXABI_1.3.13; do
    family=${limit%_*}
    newest=$(grep -oE "\b${family}_[0-9][0-9.]*" <<<"$symbols" | sort -uV | tail -n 1)
    summary+=("${newest:-none}")
    [ -n "$newest" ] || continue
    if [ "$(printf '%s\n%s\n' "$limit" "$newest" | sort -V | tail -n 1)" != "$limit" ]; then
        echo "check_binary: FAIL: $binary needs $newest, newer than $limit; the symbols:" >&2
        for version in $(grep -oE "\b${family}_[0-9][0-9.]*" <<<"$symbols" | sort -uV); do
            if [ "$(printf '%s\n%s\n' "$limit" "$version" | sort -V | tail -n 1)" != "$limit" ]; then
                grep -F "($version)" <<<"$symbols" | c++filt >&2 || true
            fi
        done
        failed=1
    fi
done
echo "check_binary: newest symbol versions: ${summary[*]} (limits GLIBC_2.34 GLIBCXX_3.4.29 CXXABI_1.3.13)"

# It runs.
version_line=$("$binary" --version)
if ! grep -qE '^ssm-doctor [0-9]+\.[0-9]+\.[0-9]+' <<<"$version_line"; then
    echo "check_binary: FAIL: $binary --version printed \"$version_line\"" >&2
    failed=1
fi
echo "check_binary: $binary --version: $version_line"
exit "$failed"
