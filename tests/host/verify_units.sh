#!/bin/sh
# systemd-analyze verify on parleyd.service with both drop-ins (dist/systemd):
# no warning at all, not only no error. The unit's binary paths point at the
# build so that verify finds them.
set -eu
build=${PARLEY_BUILDDIR:?}
src=${PARLEY_SRCDIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/parleyd.service.d"
sed "s#^\(Exec[A-Za-z]*=\)[^ ]*/parleyd#\1$build/router/parleyd#" \
	"$build/dist/parleyd.service" > "$tmp/parleyd.service"
grep -q "^ExecStart=$build/router/parleyd -c " "$tmp/parleyd.service"
grep -q '^Type=notify$' "$tmp/parleyd.service"
for d in low-port dpdk; do
	cp "$src/dist/systemd/$d.conf" "$tmp/parleyd.service.d/"
done
for unit in "$tmp/parleyd.service"; do
	SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify --man=no "$unit" > "$tmp/out" 2>&1 || {
		cat "$tmp/out"; exit 1; }
	if [ -s "$tmp/out" ]; then
		cat "$tmp/out"
		exit 1
	fi
done
# Each drop-in alone, too (the dpdk one is meant without the other).
for d in low-port dpdk; do
	rm -f "$tmp/parleyd.service.d/"*
	cp "$src/dist/systemd/$d.conf" "$tmp/parleyd.service.d/"
	SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify --man=no "$tmp/parleyd.service" \
		> "$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
	[ ! -s "$tmp/out" ] || { cat "$tmp/out"; exit 1; }
done
echo "ok: parleyd.service and its drop-ins verify clean"
