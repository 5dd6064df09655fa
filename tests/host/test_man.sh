#!/bin/sh
# The manual pages render without a warning (man --warnings), parleyd.ini(5)
# and the shipped parleyd.ini list every key of `parleyd --dump-keys` with
# its default, and parleyd --check-config accepts the shipped file.
set -eu
build=${PARLEY_BUILDDIR:?}
parleyd=$build/router/parleyd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for page in parleyd.8 parleyctl.8 parleyd.ini.5; do
	f=$build/dist/$page
	[ -s "$f" ] || fail "$page not built"
	MANWIDTH=80 man --warnings -l "$f" > "$tmp/out" 2> "$tmp/err" || fail "man -l $page"
	if [ -s "$tmp/err" ]; then
		cat "$tmp/err"
		fail "man --warnings on $page"
	fi
	[ "$(wc -l < "$tmp/out")" -gt 20 ] || fail "$page renders to almost nothing"
done

# Every key, in the page (with its default) and in the shipped file.
MANWIDTH=200 man -l "$build/dist/parleyd.ini.5" 2>/dev/null | col -b > "$tmp/page"
"$parleyd" --dump-keys > "$tmp/keys"
[ "$(wc -l < "$tmp/keys")" -gt 50 ] || fail "--dump-keys printed too little"
section=
us=$(printf '\037')	# tabs are IFS white space: empty fields would collapse
awk -F '\t' '{ printf "%s\037%s\037%s\n", $1, $2, $4 }' "$tmp/keys" > "$tmp/k3"
while IFS="$us" read -r sec key dflt; do
	if [ "$sec" != "$section" ]; then
		grep -q "^ *\[$sec\]" "$tmp/page" || fail "section [$sec] not in parleyd.ini(5)"
		grep -q "^\[$sec\]" "$build/dist/parleyd.ini" || fail "[$sec] not in parleyd.ini"
		section=$sec
	fi
	[ -n "$dflt" ] || dflt='(empty)'
	grep -qF -- "$key = $dflt" "$tmp/page" || fail "'$key = $dflt' ([$sec]) not in parleyd.ini(5)"
	grep -q "^;*$key = " "$build/dist/parleyd.ini" || fail "$key ([$sec]) not in parleyd.ini"
done < "$tmp/k3"

# The shipped file is valid, and it sets nothing but data_dir.
"$parleyd" --check-config "$build/dist/parleyd.ini" || fail "--check-config on parleyd.ini"
[ "$(grep -c '^[a-z_]* = ' "$build/dist/parleyd.ini")" = 1 ] || fail "parleyd.ini sets more than data_dir"
grep -q '^data_dir = /' "$build/dist/parleyd.ini" || fail "parleyd.ini: no absolute data_dir"
# Uncommenting every key gives the defaults: still valid.
sed '/^;\[room:/,$d; s/^;\([a-z_]* = \)/\1/' "$build/dist/parleyd.ini" | grep -v '^;' > "$tmp/all.ini"
"$parleyd" --check-config "$tmp/all.ini" || fail "--check-config on every key uncommented"
"$parleyd" --check-config "$tmp/nonexistent.ini" 2>/dev/null && fail "--check-config on a missing file"
printf '[server]\nnode_id = 0\n' > "$tmp/bad.ini"
"$parleyd" --check-config "$tmp/bad.ini" 2> "$tmp/err" && fail "--check-config on node_id = 0"
grep -q "bad.ini:2: \[server\] node_id" "$tmp/err" || fail "--check-config message: $(cat "$tmp/err")"
echo "ok: three pages without warnings, $(wc -l < "$tmp/keys") keys documented and shipped"
