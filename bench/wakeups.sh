#!/usr/bin/env bash
# Wake-ups: the system calls that sleep or wait, counted with `strace -f -c`
# over the same number of seconds for each program, partfetch beside
# curl, aria2c, axel and nginx in the same run. Prints a Markdown table for
# BENCHMARKS.md: calls a second.
#
#   bench/wakeups.sh                 # 10 s each
#   SECONDS_EACH=30 bench/wakeups.sh # longer
#   bench/wakeups.sh --quick         # 2 s each: checks that everything works
#   BASELINE=OLD/partfetch bench/wakeups.sh   # another build beside this one
#
# 1. Idle servers: `partfetch serve DIR`; nginx, one worker (its processes
#    attached with strace -p); `aria2c --enable-rpc`, waiting for commands.
# 2. An endless manifest (a 1 MiB block, then itself) from partfetch serve,
#    read to /dev/null: only partfetch reads manifests.
# 3. A slow stream: a 64 MiB file from `partfetch serve --rate-limit 1M`,
#    to /dev/null (aria2c and axel: to a file), each program alone in turn.
# 4. A slow consumer: the same file at full speed, piped into a reader
#    that takes 64 KiB every 20 ms (about 3 MB/s): partfetch, curl.
# 5. A pause between attempts: a Python server answers 503 with
#    `Retry-After: SECONDS_EACH`, then the file (5 bytes): partfetch,
#    `curl --retry 1`. Counted to the end (about SECONDS_EACH s).
#
# Sleeps are clock_nanosleep and nanosleep; waits are poll, ppoll, select,
# pselect6, epoll_wait and epoll_pwait; futex counts every lock and
# condition variable hand-off, not only timed ones. Everything lives in one
# directory under /tmp, removed on exit; every server started here is
# stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,29s/^# \{0,1\}//p' "$0"
}

SECONDS_EACH=${SECONDS_EACH:-10}
for arg in "$@"; do
  case $arg in
    --quick) SECONDS_EACH=2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $SECONDS_EACH in
  '' | *[!0-9]* | 0) echo "error: SECONDS_EACH must be a positive number" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_tools strace curl aria2c axel python3

baseline_must_run
build_release
# The builds of partfetch to count, and their names in the table.
BUILDS=("$BIN")
NAMES=(partfetch)
if [ -n "${BASELINE:-}" ]; then
  BUILDS+=("$BASELINE")
  NAMES+=("partfetch (baseline)")
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

mkdir -p "$WORK/www" "$WORK/out" "$WORK/counts"
head -c 1M /dev/urandom >"$WORK/www/block"
printf 'block\n--\nendless.parts\n' >"$WORK/www/endless.parts"
bench_data "$WORK/www/file" 64

# Servers started here, stopped on exit (bench_cleanup stops nginx).
PIDS=()
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  bench_cleanup
}
trap stop_servers EXIT

# Starts `partfetch serve` on a free port with ARGS; sets SERVED to its base URL.
serve_on() {
  local port
  port=$(free_port)
  "$BIN" serve "$WORK/www" --listen "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  SERVED=http://127.0.0.1:$port
  for _ in $(seq 50); do
    curl -s -o /dev/null "$SERVED/block" && return
    sleep 0.1
  done
  die "partfetch serve did not answer on $SERVED"
}

# Prints the calls of SYSCALL in strace -c's table in FILE (0 if absent).
calls() {
  awk -v name="$2" '$NF == name { n += $4 } END { print n + 0 }' "$1"
}

# Prints N calls as calls a second.
per() {
  awk -v n="$1" -v s="$SECONDS_EACH" 'BEGIN { printf "%.1f", n / s }'
}

ROWS=()
# Adds a table row for LABEL and TOOL from the counts in FILE.
row() {
  local label=$1 tool=$2 file=$3 sleeps futexes waits total s
  sleeps=$(($(calls "$file" clock_nanosleep) + $(calls "$file" nanosleep)))
  futexes=$(calls "$file" futex)
  waits=0
  for s in poll ppoll select pselect6 epoll_wait epoll_pwait; do
    waits=$((waits + $(calls "$file" "$s")))
  done
  total=$(awk '/^-/ { seen = 1; next } seen && $NF != "total" { n += $4 } END { print n + 0 }' "$file")
  ROWS+=("| $label | $tool | $(per "$sleeps") | $(per "$waits") | $(per "$futexes") | $(per "$total") |")
}

# Counts the system calls of COMMAND... for SECONDS_EACH seconds into FILE.
count() {
  local file=$1
  shift
  timeout "${LIMIT:-$SECONDS_EACH}" strace -f -c -o "$file" "$@" || true
}

# Counts the calls of running processes PIDS... for SECONDS_EACH seconds.
count_attached() {
  local file=$1 args=()
  shift
  for pid in "$@"; do args+=(-p "$pid"); done
  timeout -s INT "$SECONDS_EACH" strace -f -c -o "$file" "${args[@]}" 2>/dev/null || true
  # No call at all leaves the file empty.
  [ -s "$file" ] || printf -- '------\n' >"$file"
}

# 1. Idle servers.
note "idle servers, $SECONDS_EACH s each"
for i in "${!BUILDS[@]}"; do
  count "$WORK/counts/serve$i" "${BUILDS[$i]}" serve "$WORK/www" --listen "127.0.0.1:$(free_port)" >/dev/null 2>&1
  row "idle server" "${NAMES[$i]} serve" "$WORK/counts/serve$i"
done
NGINX_PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$NGINX_PORT" "$WORK/www")"
sleep 0.5
master=$(cat "$WORK/nginx/nginx.pid")
# shellcheck disable=SC2046 # one pid a word
count_attached "$WORK/counts/nginx" "$master" $(pgrep -P "$master")
row "idle server" "nginx" "$WORK/counts/nginx"
nginx_stop "$WORK/nginx"
count "$WORK/counts/aria2-rpc" aria2c --no-conf -q --enable-rpc --rpc-listen-port="$(free_port)" -d "$WORK/out"
row "idle server" "aria2c --enable-rpc" "$WORK/counts/aria2-rpc"

# 2. An endless manifest.
serve_on
FAST=$SERVED
note "an endless manifest, $SECONDS_EACH s"
for i in "${!BUILDS[@]}"; do
  count "$WORK/counts/endless$i" "${BUILDS[$i]}" -q "$FAST/endless.parts" /dev/null
  row "endless manifest to /dev/null" "${NAMES[$i]}" "$WORK/counts/endless$i"
done

# 3. A slow stream.
serve_on --rate-limit 1M
SLOW=$SERVED
note "a stream at 1 MB/s, $SECONDS_EACH s each"
for i in "${!BUILDS[@]}"; do
  count "$WORK/counts/slow-partfetch$i" "${BUILDS[$i]}" -q "$SLOW/file" /dev/null
  row "file at 1 MB/s" "${NAMES[$i]}" "$WORK/counts/slow-partfetch$i"
  count "$WORK/counts/slow-partfetch-n1-$i" "${BUILDS[$i]}" -q -n 1 "$SLOW/file" /dev/null
  row "file at 1 MB/s" "${NAMES[$i]} -n 1" "$WORK/counts/slow-partfetch-n1-$i"
done
count "$WORK/counts/slow-curl" curl -s -o /dev/null "$SLOW/file"
row "file at 1 MB/s" "curl" "$WORK/counts/slow-curl"
count "$WORK/counts/slow-aria2c" aria2c --no-conf -q --allow-overwrite=true \
  --file-allocation=none -d "$WORK/out" -o aria2c "$SLOW/file"
row "file at 1 MB/s" "aria2c" "$WORK/counts/slow-aria2c"
count "$WORK/counts/slow-axel" axel -q -o "$WORK/out/axel" "$SLOW/file"
row "file at 1 MB/s" "axel" "$WORK/counts/slow-axel"
rm -f "$WORK"/out/*

# 4. A slow consumer.
cat >"$WORK/slow-reader.py" <<'EOF'
import sys, time
while sys.stdin.buffer.read(65536):
    time.sleep(0.02)
EOF
note "a slow consumer, $SECONDS_EACH s each"
for i in "${!BUILDS[@]}"; do
  count "$WORK/counts/consumer-partfetch$i" "${BUILDS[$i]}" -q "$FAST/file" - | python3 "$WORK/slow-reader.py"
  row "file into a reader of 3 MB/s" "${NAMES[$i]}" "$WORK/counts/consumer-partfetch$i"
done
count "$WORK/counts/consumer-curl" curl -s "$FAST/file" | python3 "$WORK/slow-reader.py"
row "file into a reader of 3 MB/s" "curl" "$WORK/counts/consumer-curl"

# 5. A pause between attempts.
cat >"$WORK/retry-server.py" <<'EOF'
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    asked = set()
    def do_GET(self):
        first = self.path not in Handler.asked
        Handler.asked.add(self.path)
        if first:
            self.send_response(503)
            self.send_header("Retry-After", sys.argv[2])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
RETRY=http://127.0.0.1:$(free_port)
python3 "$WORK/retry-server.py" "${RETRY##*:}" "$SECONDS_EACH" &
PIDS+=($!)
# The first request for each path gets the 503, the next the file.
for _ in $(seq 50); do
  curl -s -o /dev/null "$RETRY/ready" && break
  sleep 0.1
done
note "a pause of $SECONDS_EACH s between two attempts"
for i in "${!BUILDS[@]}"; do
  LIMIT=$((SECONDS_EACH + 10)) count "$WORK/counts/retry$i" "${BUILDS[$i]}" -q "$RETRY/$i" /dev/null
  row "503 with Retry-After, then the file" "${NAMES[$i]}" "$WORK/counts/retry$i"
done
LIMIT=$((SECONDS_EACH + 10)) count "$WORK/counts/retry-curl" curl -s --retry 1 -o /dev/null "$RETRY/curl"
row "503 with Retry-After, then the file" "curl --retry 1" "$WORK/counts/retry-curl"

echo "## \`${BASELINE:+BASELINE=$BASELINE }bench/wakeups.sh\` on $(bench_commit) ($(date -u +%F))"
echo
echo "Load $LOAD_BEFORE before; $SECONDS_EACH s each, system calls a second (\`strace -f -c\`)."
echo
echo "| run | program | sleeps/s | poll, select, epoll/s | futex/s | all calls/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}"
