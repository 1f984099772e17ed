#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the RPM with scripts/package.sh and checks it: rpmlint reports no errors, it installs
# into a temporary root, every file lands where the spec says, the installed binary is portable
# to Amazon Linux 2023 and runs, the installed units pass check_units.sh, and it uninstalls.
#   tests/packaging/check_rpm.sh [--output DIR] [--without-check]
# Installing into a root needs root; otherwise that part is skipped (exit 77) after the rest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
output=$repo/build-rpm
package_options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --output) output=${2:?--output needs a directory}; shift 2 ;;
        --without-check) package_options+=(--without-check); shift ;;
        *) echo "check_rpm: unknown argument \"$1\"" >&2; exit 2 ;;
    esac
done
for tool in rpmbuild rpm rpmlint; do
    command -v "$tool" >/dev/null || { echo "check_rpm: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
fail() { echo "check_rpm: FAIL: $*" >&2; exit 1; }

mkdir -p "$output"
"$repo/scripts/package.sh" --output "$output" "${package_options[@]}" >"$output.log" 2>&1 ||
    { tail -n 60 "$output.log" >&2; fail "scripts/package.sh failed (whole log: $output.log)"; }
version=$(awk '$1 == "Version:" { print $2 }' "$repo/packaging/ssm-doctor.spec")
rpm_file=$(find "$output/RPMS" -name "ssm-doctor-$version-*.x86_64.rpm" ! -name '*debug*' | head -n 1)
srpm_file=$(find "$output/SRPMS" -name "ssm-doctor-$version-*.src.rpm" | head -n 1)
[ -n "$rpm_file" ] && [ -n "$srpm_file" ] || fail "no RPM or source RPM under $output"
echo "check_rpm: built $rpm_file and $srpm_file"

# rpmlint, with Fedora's policy (packaging/rpmlint.toml): errors fail, warnings are shown.
lint=$(rpmlint -c "$repo/packaging/rpmlint.toml" "$repo/packaging/ssm-doctor.spec" "$srpm_file" \
    "$rpm_file" 2>&1) || true
echo "$lint"
errors=$(sed -n 's/.* \([0-9][0-9]*\) errors, .*/\1/p' <<<"$lint" | tail -n 1)
[ -n "$errors" ] || fail "rpmlint gave no summary"
[ "$errors" -eq 0 ] || fail "rpmlint reports $errors errors"

# The file list, exactly; build-id links are rpm's own and vary with the build.
expected=$(cat <<LIST
/etc/ssm-doctor
/etc/ssm-doctor/ssm-doctor.yaml
/usr/bin/ssm-doctor
/usr/lib/systemd/system/ssm-doctor-watch.service
/usr/lib/systemd/system/ssm-doctor.service
/usr/lib/systemd/system/ssm-doctor.timer
/usr/share/doc/ssm-doctor
/usr/share/doc/ssm-doctor/README.md
/usr/share/doc/ssm-doctor/docs
$(cd "$repo" && find docs -maxdepth 1 -name '*.md' -printf '/usr/share/doc/ssm-doctor/%p\n')
/usr/share/licenses/ssm-doctor
/usr/share/licenses/ssm-doctor/LICENSE
/usr/share/ssm-doctor
/usr/share/ssm-doctor/amazon-cloudwatch-agent.json
LIST
)
listed=$(rpm -qlp "$rpm_file" | grep -v '^/usr/lib/\.build-id' | sort)
if [ "$listed" != "$(sort <<<"$expected")" ]; then
    diff <(sort <<<"$expected") <(echo "$listed") >&2 || true
    fail "the package's files differ from the expected list (< expected, > packaged)"
fi
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file")
grep -qx 'cn /etc/ssm-doctor/ssm-doctor.yaml' <<<"$flags" || fail "the configuration is not %config(noreplace)"
grep -qx 'l /usr/share/licenses/ssm-doctor/LICENSE' <<<"$flags" || fail "LICENSE is not %license"
grep -qx 'd /usr/share/doc/ssm-doctor/README.md' <<<"$flags" || fail "README.md is not %doc"

# Scriptlets: presets on install, disable on removal, restart on upgrade, for every unit.
scripts=$(rpm -qp --scripts "$rpm_file")
for unit in ssm-doctor.service ssm-doctor.timer ssm-doctor-watch.service; do
    [ "$(grep -c "$unit" <<<"$scripts")" -ge 3 ] || fail "$unit is not in %post, %preun and %postun"
done
# Dependencies: nothing on yaml-cpp, spdlog or fmt, which are built in.
if rpm -qp --requires "$rpm_file" | grep -E 'yaml-cpp|spdlog|fmt'; then
    fail "the package depends on a library that should be built in"
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "check_rpm: SKIP: installing into a temporary root needs root; the rest passed"
    exit 77
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rpm --root "$root" --initdb
# --nodeps: the temporary root has no glibc; --noscripts: the scriptlets call systemctl.
rpm --root "$root" -i --nodeps --noscripts "$rpm_file"
while IFS= read -r path; do
    [ -e "$root$path" ] || fail "$path is listed but not installed"
done <<<"$listed"
cmp "$root/etc/ssm-doctor/ssm-doctor.yaml" "$repo/packaging/ssm-doctor.yaml" ||
    fail "the installed configuration differs from packaging/ssm-doctor.yaml"
for unit in ssm-doctor.service ssm-doctor.timer ssm-doctor-watch.service; do
    cmp "$root/usr/lib/systemd/system/$unit" "$repo/systemd/$unit" || fail "$unit differs"
done
[ "$(stat -c %a "$root/usr/bin/ssm-doctor")" = 755 ] || fail "/usr/bin/ssm-doctor is not mode 755"
rpm --root "$root" -V --nodeps ssm-doctor || fail "rpm -V finds the installed files changed"
"$here/check_binary.sh" "$root/usr/bin/ssm-doctor"
"$here/check_units.sh" "$root/usr/lib/systemd/system" "$root/usr/bin/ssm-doctor"

# Uninstall: the files go, the root is left with rpm's database only.
rpm --root "$root" -e --nodeps --noscripts ssm-doctor
for path in /usr/bin/ssm-doctor /etc/ssm-doctor/ssm-doctor.yaml /usr/lib/systemd/system/ssm-doctor.timer; do
    [ ! -e "$root$path" ] || fail "$path is still there after rpm -e"
done
echo "check_rpm: installed into $root, checked, uninstalled: all good"
