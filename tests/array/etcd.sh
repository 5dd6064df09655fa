#!/bin/sh
# A throwaway etcd on 127.0.0.1 for scripts (the C tests use etcdfix.c):
#   tests/array/etcd.sh start DIR   start etcd with its data and log in DIR (created),
#                                   wait until healthy, print its client URL
#   tests/array/etcd.sh stop DIR    stop it and remove DIR
# Ports are free ones picked at start; DIR/url and DIR/pid record them.
set -eu

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "${1:-}" in
start)
	dir=$2
	mkdir -p "$dir"
	cp=$(free_port); pp=$(free_port)
	url=http://127.0.0.1:$cp
	peer=http://127.0.0.1:$pp
	etcd --name fix --data-dir "$dir/data" \
		--listen-client-urls "$url" --advertise-client-urls "$url" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "fix=$peer" --initial-cluster-state new \
		>"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/pid"
	echo "$url" >"$dir/url"
	i=0
	until curl -sf "$url/health" 2>/dev/null | grep -q '"health":"true"'; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
			echo "etcd.sh: etcd on $url did not become healthy; $dir/etcd.log:" >&2
			tail -5 "$dir/etcd.log" >&2
			kill "$(cat "$dir/pid")" 2>/dev/null || true
			exit 1
		fi
		sleep 0.1
	done
	echo "$url"
	;;
stop)
	dir=$2
	if [ -f "$dir/pid" ]; then
		pid=$(cat "$dir/pid")
		kill "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start DIR | stop DIR" >&2
	exit 2
	;;
esac
