#!/usr/bin/env bash
# partfetch serve against nginx: one 1 GiB file over loopback, fetched with
# curl to /dev/null from each server in turn; then hostile clients against
# fresh instances of both (bench/serve-clients.py). Prints two Markdown
# tables for BENCHMARKS.md: the throughput ratio (goal: partfetch >= 0.8 x
# nginx), and what the hostile clients got from each server.
#
#   bench/serve.sh            # 1 GiB, 5 runs per server; races 10 s each
#   RUNS=9 bench/serve.sh     # more runs
#   RACE_SECONDS=30 bench/serve.sh   # longer races
#   bench/serve.sh --quick    # 256 MiB, 1 run, races 2 s: checks that everything works
#   PARTFETCH=path/to/partfetch bench/serve.sh   # a binary built elsewhere
#
# nginx runs as in bench/bench.sh (one worker, sendfile on); partfetch
# serve with its defaults. Both serve the same file from the page cache.
# Hostile clients: 1000 kept-alive connections idle after one answer each
# (the servers' resident memory), 2000 connects at once, 2100 connections
# that send nothing (when is a new client served), a directory swapped with
# a link out of the served directory, a file swapped with a named pipe.
# For those nginx has worker_connections 4096 (2048, partfetch's cap, for
# the connections that send nothing) and disable_symlinks on. Everything lives in one directory under /tmp,
# removed on exit; every server is stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,24s/^# \{0,1\}//p' "$0"
}

SIZE=1G
RUNS=${RUNS:-5}
RACE_SECONDS=${RACE_SECONDS:-10}
for arg in "$@"; do
  case $arg in
    --quick) SIZE=256M; RUNS=1; RACE_SECONDS=2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive

need_tools curl python3
# 2100 connections at once, and the server's end of each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 8192 ] ||
  die "open files are limited to $(ulimit -n); the hostile clients need 8192"
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

# ---------------------------------------------------------- hostile clients

note "hostile clients, against a fresh instance of each server"
H=$WORK/hostile
mkdir -p "$H/d" "$WORK/outside"
echo hello >"$H/small.txt"
printf inside >"$H/d/f"
printf OUTSIDE >"$WORK/outside/f"
ln -s "$WORK/outside" "$H/link"
printf regular >"$H/f"
mkfifo "$H/pipe"
HOSTILE_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
HN_PORT=$(free_port)
NGINX_WORKER_CONNECTIONS=4096 nginx_start "$WORK/nginx-hostile" \
  "$(nginx_server "$HN_PORT" "$H" "" "" "access_log off; disable_symlinks on;")"
# Capped as partfetch serve is, for the connections that send nothing.
HC_PORT=$(free_port)
NGINX_WORKER_CONNECTIONS=2048 nginx_start "$WORK/nginx-capped" \
  "$(nginx_server "$HC_PORT" "$H" "" "" "access_log off;")"
HN_MASTER=$(cat "$WORK/nginx-hostile/nginx.pid")
HN_PIDS="$HN_MASTER $(pgrep -P "$HN_MASTER" | tr '\n' ' ')"
HS_PORT=$(free_port)
"$PARTFETCH" serve "$H" --listen "127.0.0.1:$HS_PORT" 2>/dev/null &
SERVE_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$HS_PORT/small.txt" >/dev/null 2>&1 && break
  sleep 0.05
done
clients() { python3 bench/serve-clients.py "$@"; }
# The burst whose connects took the median time, of five (a burst that
# overflows a backlog waits a second for the SYNs sent again).
median_burst() {
  local i
  for i in 1 2 3 4 5; do clients burst "$1" 2000; done | sort -g -k3 | sed -n 3p
}
# shellcheck disable=SC2086 # the pid lists are meant to be split
{
  N_IDLE=$(clients idle "$HN_PORT" 1000 $HN_PIDS)
  S_IDLE=$(clients idle "$HS_PORT" 1000 "$SERVE_PID")
  N_BURST=$(median_burst "$HN_PORT")
  S_BURST=$(median_burst "$HS_PORT")
  N_SILENT=$(clients silent "$HC_PORT" 2100)
  S_SILENT=$(clients silent "$HS_PORT" 2100)
  N_SWAP=$(clients swap "$HN_PORT" "$RACE_SECONDS" "$H")
  S_SWAP=$(clients swap "$HS_PORT" "$RACE_SECONDS" "$H")
  N_FIFO=$(clients fifo "$HN_PORT" "$RACE_SECONDS" "$H")
  S_FIFO=$(clients fifo "$HS_PORT" "$RACE_SECONDS" "$H")
}
stop_serve
nginx_stop "$WORK/nginx-hostile"
nginx_stop "$WORK/nginx-capped"
HOSTILE_LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
for line in "$N_IDLE" "$S_IDLE" "$N_BURST" "$S_BURST" "$N_SILENT" "$S_SILENT" \
  "$N_SWAP" "$S_SWAP" "$N_FIFO" "$S_FIFO"; do
  note "$line"
done
# idle N BEFORE WITH PER | burst N CONNECT ANSWERED OK REFUSED OTHER |
# silent N SERVED_AFTER ATTEMPTS STATUSES | swap REQUESTS OUTSIDE INSIDE 404 OTHER |
# fifo REQUESTS BLOCKED CLOSED ANSWERED_AFTER
idle_cell() { awk '{ printf "%.1f MB (%.1f KiB each)", $4 / 1024, $5 }' <<<"$1"; }
burst_cell() { awk '{ printf "%s s / %s s (%s answered 200)", $3, $4, $5 }' <<<"$1"; }
silent_cell() { awk '{ printf "%s s (%s attempts: %s)", $3, $4, $5 }' <<<"$1"; }
swap_cell() { awk '{ printf "%s of %s", $3, $2 }' <<<"$1"; }
fifo_cell() { awk '{ printf "%s / %s of %s%s", $3, $4, $2, ($5 == 1 ? "" : "; a fresh request **unanswered**") }' <<<"$1"; }

cat <<EOF2
### partfetch serve against nginx: $((BYTES / 1048576)) MiB to curl over loopback

| server | median wall (s) | MiB/s | throughput vs nginx | goal ≥ 0.8 |
| --- | ---: | ---: | ---: | :---: |
| nginx $NGINX_VERSION (1 worker, sendfile) | $NGINX_WALL | $NGINX_RATE | 1.00 | |
| partfetch serve (read + write, 256 KiB buffer) | $SERVE_WALL | $SERVE_RATE | $RATIO | $MET |

$RUNS runs each, alternating which server goes first; curl $(curl --version | awk 'NR == 1 { print $2 }') to /dev/null;
partfetch serve's peak RSS $SERVE_RSS KiB. $CORES cores ($CPU_MODEL), commit $COMMIT, $(date -u +%Y-%m-%d),
load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after.

### partfetch serve against nginx: hostile clients

| clients | nginx $NGINX_VERSION | partfetch serve |
| --- | --- | --- |
| 1000 kept-alive connections, idle after one answer each: resident memory with them | $(idle_cell "$N_IDLE") | $(idle_cell "$S_IDLE") |
| 2000 connects at once (median of 5): all connected / all answered | $(burst_cell "$N_BURST") | $(burst_cell "$S_BURST") |
| 2100 connections sending nothing: a new client served after | $(silent_cell "$N_SILENT") | $(silent_cell "$S_SILENT") |
| a directory swapped with a link out of the served one, ${RACE_SECONDS} s: the outside file served | $(swap_cell "$N_SWAP") | $(swap_cell "$S_SWAP") |
| a file swapped with a named pipe, ${RACE_SECONDS} s: requests blocked / closed unanswered | $(fifo_cell "$N_FIFO") | $(fifo_cell "$S_FIFO") |

nginx with worker_connections 4096 and disable_symlinks on (for the
connections sending nothing, 2048 as partfetch serve's cap); partfetch
serve with its defaults. "Each" is the growth of the servers' resident
memory over the idle count (nginx: master and worker; its connection
structures are allocated at start). Load average $HOSTILE_LOAD_BEFORE
before the hostile clients, $HOSTILE_LOAD_AFTER after.
EOF2
