#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the source tarball and the RPM (binary and source) with rpmbuild, into build-rpm/.
#   scripts/package.sh [--output DIR] [--without-check]
# --without-check skips building and running the unit tests inside rpmbuild.
# Details, and why Debian needs --nodeps and packaging/macros.fedora-compat: packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

output=build-rpm
rpmbuild_options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --output) output=${2:?--output needs a directory}; shift 2 ;;
        --output=*) output=${1#--output=}; shift ;;
        --without-check) rpmbuild_options+=(--without check); shift ;;
        *) echo "package: unknown argument \"$1\"" >&2; exit 2 ;;
    esac
done
for tool in rpmbuild git tar; do
    command -v "$tool" >/dev/null || { echo "package: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

# One version: CMake's project() and the spec must agree.
version=$(sed -n 's/^project(ssm-doctor VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
spec_version=$(awk '$1 == "Version:" { print $2 }' packaging/ssm-doctor.spec)
if [ -z "$version" ] || [ "$version" != "$spec_version" ]; then
    echo "package: CMakeLists.txt says version \"$version\", packaging/ssm-doctor.spec \"$spec_version\"" >&2
    exit 1
fi

mkdir -p "$output"
topdir=$(cd "$output" && pwd)
rm -rf "$topdir"/{BUILD,BUILDROOT,RPMS,SRPMS,SOURCES,SPECS}
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SRPMS,SOURCES,SPECS}

# The source tarball: the files git knows, tracked or new but not ignored, as they are in the
# work tree (so uncommitted edits are packaged too), under ssm-doctor-VERSION/. Owner, order and
# times are fixed so that the same tree gives the same tarball.
tarball=$topdir/SOURCES/ssm-doctor-$version.tar.gz
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    tar --create --null --files-from=- --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@$mtime" --transform="s,^,ssm-doctor-$version/," --file=- |
    gzip -n >"$tarball"
cp packaging/ssm-doctor.spec "$topdir/SPECS/"
echo "package: source tarball $tarball"

# Fedora and Amazon Linux define %cmake and the systemd scriptlet macros; elsewhere load ours.
if [ "$(rpm --eval '%{?cmake:defined}')" != "defined" ]; then
    rpmbuild_options+=(--load "$repo/packaging/macros.fedora-compat")
fi
# --nodeps: BuildRequires names Fedora's packages, which a Debian rpm database never lists;
# scripts/install-deps.sh installs their Debian equivalents.
rpmbuild -ba --nodeps --define "_topdir $topdir" "${rpmbuild_options[@]}" \
    "$topdir/SPECS/ssm-doctor.spec"
find "$topdir/RPMS" "$topdir/SRPMS" -name '*.rpm' -printf 'package: %p\n'
