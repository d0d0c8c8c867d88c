#!/usr/bin/env bash
# partfetch serve against nginx: one 1 GiB file over loopback, fetched with
# curl to /dev/null from each server in turn. Prints a Markdown table for
# BENCHMARKS.md with the throughput ratio (goal: partfetch >= 0.8 x nginx).
#
#   bench/serve.sh            # 1 GiB, 5 runs per server
#   RUNS=9 bench/serve.sh     # more runs
#   bench/serve.sh --quick    # 256 MiB, 1 run: checks that everything works
#   PARTFETCH=path/to/partfetch bench/serve.sh   # a binary built elsewhere
#
# nginx runs as in bench/bench.sh (one worker, sendfile on); partfetch
# serve with its defaults. Both serve the same file from the page cache.
# Everything lives in one directory under /tmp, removed on exit; both
# servers are stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,15s/^# \{0,1\}//p' "$0"
}

SIZE=1G
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) SIZE=256M; RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive

command -v curl >/dev/null 2>&1 || die "curl is missing"
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
need_gnu_time

if [ -z "${PARTFETCH:-}" ]; then
  build_release
  PARTFETCH=$BIN
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
SERVE_PID=""
stop_serve() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
  fi
}
trap 'stop_serve; bench_cleanup' EXIT

mkdir -p "$WORK/www"
note "generating a $SIZE file (a random 16 MiB block, repeated)"
case $SIZE in
  1G) mib=1024 ;;
  256M) mib=256 ;;
esac
bench_data "$WORK/www/data.bin" "$mib"
BYTES=$(stat -c %s "$WORK/www/data.bin")

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

NGINX_PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$NGINX_PORT" "$WORK/www" "" "" "access_log off;")"
SERVE_PORT=$(free_port)
"$PARTFETCH" serve "$WORK/www" --listen "127.0.0.1:$SERVE_PORT" 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
  grep -q "serving" "$WORK/serve.log" 2>/dev/null && break
  sleep 0.05
done
grep -q "serving" "$WORK/serve.log" || die "partfetch serve did not start: $(cat "$WORK/serve.log")"

NGINX_URL=http://127.0.0.1:$NGINX_PORT/data.bin
SERVE_URL=http://127.0.0.1:$SERVE_PORT/data.bin

# Untimed: both serve the file byte for byte (and the page cache is warm).
for url in "$NGINX_URL" "$SERVE_URL"; do
  curl -s "$url" | cmp -s - "$WORK/www/data.bin" || die "$url does not serve the file"
done

: >"$WORK/nginx.times"
: >"$WORK/serve.times"
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then
    time_run "$WORK/nginx.times" curl -s -o /dev/null "$NGINX_URL"
    time_run "$WORK/serve.times" curl -s -o /dev/null "$SERVE_URL"
  else
    time_run "$WORK/serve.times" curl -s -o /dev/null "$SERVE_URL"
    time_run "$WORK/nginx.times" curl -s -o /dev/null "$NGINX_URL"
  fi
  note "run $i/$RUNS: nginx $(tail -n 1 "$WORK/nginx.times"), partfetch serve $(tail -n 1 "$WORK/serve.times") (curl's wall s, cpu s, rss KiB)"
done
SERVE_RSS=$(awk '/VmHWM/ { print $2 }' "/proc/$SERVE_PID/status" 2>/dev/null || echo "?")
stop_serve

NGINX_WALL=$(median "$WORK/nginx.times" 1)
SERVE_WALL=$(median "$WORK/serve.times" 1)
mibps() { awk -v b="$BYTES" -v t="$1" 'BEGIN { if (t == 0) print "n/a"; else printf "%.0f\n", b / 1048576 / t }'; }
NGINX_RATE=$(mibps "$NGINX_WALL")
SERVE_RATE=$(mibps "$SERVE_WALL")
RATIO=$(ratio "$NGINX_WALL" "$SERVE_WALL")
MET=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.8) ? "yes" : "**no**" }')
CORES=$(nproc)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(bench_commit)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')

cat <<EOF2
### partfetch serve against nginx: $((BYTES / 1048576)) MiB to curl over loopback

| server | median wall (s) | MiB/s | throughput vs nginx | goal ≥ 0.8 |
| --- | ---: | ---: | ---: | :---: |
| nginx $NGINX_VERSION (1 worker, sendfile) | $NGINX_WALL | $NGINX_RATE | 1.00 | |
| partfetch serve (read + write, 256 KiB buffer) | $SERVE_WALL | $SERVE_RATE | $RATIO | $MET |

$RUNS runs each, alternating which server goes first; curl $(curl --version | awk 'NR == 1 { print $2 }') to /dev/null;
partfetch serve's peak RSS $SERVE_RSS KiB. $CORES cores ($CPU_MODEL), commit $COMMIT, $(date -u +%Y-%m-%d),
load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after.
EOF2
