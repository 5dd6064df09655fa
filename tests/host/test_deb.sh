#!/bin/sh
# The Debian package: dpkg-buildpackage -b from a copy of the tree (no
# network; meson with -Dtests=false, DEB_BUILD_OPTIONS=nocheck), then its
# contents unpacked with dpkg -x into a scratch root: the files, their
# modes, the conffile, the maintainer scripts (the parley user and group,
# /var/lib/parley 0750, the unit enabled), the unit itself, lintian, and
# parleyd --check-config on the shipped configuration.
set -eu
src=${PARLEY_SRCDIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# The package is built from the sources with Debian's flags: nothing for the
# sanitizer pass of ./parley test to add.
if [ -n "${PARLEY_PARLEYD_ASAN_OPTIONS:-}" ]; then echo "skipped under the sanitizers"; exit 77; fi
for t in dpkg-buildpackage dh lintian; do
	command -v $t >/dev/null || fail "$t missing (./parley test installs debhelper, lintian, dpkg-dev)"
done

# The tree as git sees it (tracked and new files, not the build directories).
mkdir "$tmp/parley"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 tar -cf - 2>/dev/null) | tar -C "$tmp/parley" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude=./var --exclude=./.git -cf - . |
		tar -C "$tmp/parley" -xf -
fi
[ -f "$tmp/parley/debian/control" ] || fail "no debian/ in the copy"

start=$(date +%s)
# PARLEY_TEST_DEB=FILE checks that package instead of building one.
if [ -n "${PARLEY_TEST_DEB:-}" ]; then
	cp "$PARLEY_TEST_DEB" "$tmp/" && echo "-Dtests=false" > "$tmp/build.log"
else (cd "$tmp/parley" &&
	# noopt: the test checks the packaging, not the code generation (-O0 builds
	# in about half the time).
	DEB_BUILD_OPTIONS="nocheck noddebs noopt parallel=2" dpkg-buildpackage -b -us -uc \
		> "$tmp/build.log" 2>&1) || { tail -40 "$tmp/build.log"; fail "dpkg-buildpackage"; }
fi
echo "built in $(( $(date +%s) - start )) s"
grep -q -- "-Dtests=false" "$tmp/build.log" || fail "meson was not given -Dtests=false"
deb=$(ls "$tmp"/parley_*.deb)
[ -f "$deb" ] || fail "no parley_*.deb"

# Files and modes.
dpkg-deb -c "$deb" > "$tmp/list"
check() {	# MODE PATH
	grep -q "^$1 root/root .* \./$2\$" "$tmp/list" || fail "$2 is not $1 root/root in the package"
}
check -rwxr-xr-x usr/sbin/parleyd
check -rwxr-xr-x usr/sbin/parleyctl
check -rwxr-xr-x usr/bin/parley-bench
check -rw-r--r-- etc/parley/parleyd.ini
check -rw-r--r-- lib/systemd/system/parleyd.service
check -rw-r--r-- usr/share/parley/systemd/low-port.conf
check -rw-r--r-- usr/share/parley/systemd/dpdk.conf
check -rw-r--r-- usr/share/man/man8/parleyd.8.gz
check -rw-r--r-- usr/share/man/man8/parleyctl.8.gz
check -rw-r--r-- usr/share/man/man5/parleyd.ini.5.gz
check -rw-r--r-- usr/share/doc/parley/copyright
check drwxr-xr-x var/lib/parley/
if grep -q '\.a$\|/include/\|test_' "$tmp/list"; then fail "libraries, headers or tests in the package"; fi

# Control files and maintainer scripts.
dpkg-deb -e "$deb" "$tmp/ctl"
grep -qx /etc/parley/parleyd.ini "$tmp/ctl/conffiles" || fail "parleyd.ini is not a conffile"
grep -q '^Depends:.*adduser' "$tmp/ctl/control" || fail "no Depends on adduser"
pi=$tmp/ctl/postinst
grep -q 'adduser --system --group .*parley$' "$pi" || fail "postinst does not create parley"
grep -q 'chown parley:parley /var/lib/parley' "$pi" || fail "postinst: /var/lib/parley owner"
grep -q 'chmod 0750 /var/lib/parley' "$pi" || fail "postinst: /var/lib/parley mode"
grep -q "deb-systemd-helper enable 'parleyd.service'" "$pi" || fail "postinst: unit not enabled"
grep -q "deb-systemd-invoke" "$tmp/ctl/prerm" || fail "prerm does not stop the unit"
sh -n "$pi" || fail "postinst: syntax"

# The unpacked package.
dpkg-deb -x "$deb" "$tmp/root"
r=$tmp/root
u=$r/lib/systemd/system/parleyd.service
grep -qx 'ExecStart=/usr/sbin/parleyd -c /etc/parley/parleyd.ini' "$u" || fail "unit ExecStart"
grep -qx 'User=parley' "$u" && grep -qx 'Group=parley' "$u" || fail "unit user/group"
grep -qx 'StateDirectory=parley' "$u" && grep -qx 'StateDirectoryMode=0750' "$u" ||
	fail "unit state directory"
grep -qx 'data_dir = /var/lib/parley' "$r/etc/parley/parleyd.ini" || fail "shipped data_dir"
"$r/usr/sbin/parleyd" --check-config "$r/etc/parley/parleyd.ini" || fail "--check-config"
"$r/usr/sbin/parleyd" --check-config /etc/parley/parleyd.ini.none 2>/dev/null &&
	fail "--check-config on a missing file"
"$r/usr/sbin/parleyctl" --help >/dev/null 2>&1 || [ $? -eq 2 ] || fail "parleyctl does not run"
zcat "$r/usr/share/man/man5/parleyd.ini.5.gz" | grep -q '^\.TH PARLEYD.INI 5' ||
	fail "parleyd.ini(5)"
# The unit as installed, against the unpacked binaries.
mkdir "$tmp/units"
sed "s#/usr/sbin/parleyd#$r/usr/sbin/parleyd#" "$u" > "$tmp/units/parleyd.service"
SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no "$tmp/units/parleyd.service" \
	> "$tmp/verify" 2>&1 || { cat "$tmp/verify"; fail "systemd-analyze verify"; }
[ ! -s "$tmp/verify" ] || { cat "$tmp/verify"; fail "systemd-analyze verify warns"; }

# lintian: nothing but the overrides (explained in debian/parley.lintian-overrides).
lintian --fail-on error,warning "$deb" > "$tmp/lintian" 2>&1 || {
	cat "$tmp/lintian"; fail "lintian"; }
if grep -E '^(E|W): ' "$tmp/lintian"; then fail "lintian"; fi
echo "ok: $(basename "$deb"), $(grep -c '^-' "$tmp/list") files"
