#!/usr/bin/env bash
# Small answers from a server that writes each answer's head and body in two
# sends without TCP_NODELAY (Python's http.server in HTTP/1.1 mode,
# bench/nagle-server.py): Nagle's algorithm holds the body until the client
# acknowledges the head, which Linux delays by up to 40 ms unless the
# client asks for a quick acknowledgement. Prints a Markdown table for
# BENCHMARKS.md.
#
#   bench/nagle.sh                         # 3 runs of each; 10 s endless
#   RUNS=5 bench/nagle.sh
#   BASELINE=OLD/partfetch bench/nagle.sh  # also time another build
#   bench/nagle.sh --quick                 # 1 run; 5 s endless
#
# 1. FILES files of 34 bytes over one kept-alive connection: a manifest
#    of them with `-j 1`, against `curl -K list` (one connection too).
# 2. 300 parts of 32 KiB, each answered after 50 ms: a manifest with the
#    default window (8 parts at once), against the same with `-j 1` and
#    curl fetching them one after another.
# 3. An endless manifest of two parts of 34 bytes (`a`, `b`, then itself)
#    streamed for SECONDS: loops a second, and the resident set after 1 s
#    and at the end.
#
# Needs python3, curl and GNU time; cleans up on exit.
set -euo pipefail

usage() {
  sed -n '2,24s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-3}
FILES=1000
SECONDS_ENDLESS=10
for arg in "$@"; do
  case $arg in
    --quick) RUNS=1 SECONDS_ENDLESS=5 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
BASELINE=${BASELINE:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
need_tools curl python3

build_release
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
baseline_must_run
partfetch_builds
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVERS=()
stop_servers() {
  local pid
  for pid in "${SERVERS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bench_cleanup
}
trap stop_servers EXIT

# Starts nagle-server.py on a free port serving DIR, each answer after
# DELAY_MS; sets PORT.
start_server() {
  local dir=$1 delay=$2 i
  PORT=$(free_port)
  python3 bench/nagle-server.py "$PORT" "$dir" "$delay" 2>>"$WORK/servers.log" &
  SERVERS+=($!)
  for i in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return
    sleep 0.05
  done
  die "nagle-server.py did not start on port $PORT"
}

note "writing the files"
mkdir -p "$WORK/small/p" "$WORK/slow/p"
printf '%033d\n' 0 >"$WORK/part34"
for i in $(seq 0 $((FILES - 1))); do
  cp "$WORK/part34" "$WORK/small/p/$i"
done
cp "$WORK/part34" "$WORK/small/a"
cp "$WORK/part34" "$WORK/small/b"
printf 'a\n--\nb\n--\nendless.parts\n' >"$WORK/small/endless.parts"
for i in $(seq 0 $((FILES - 1))); do
  printf 'p/%s\n--\n' "$i"
done >"$WORK/small/many.parts"
head -c 32768 /dev/urandom >"$WORK/part32k"
for i in $(seq 0 299); do
  cp "$WORK/part32k" "$WORK/slow/p/$i"
  printf 'p/%s\n--\n' "$i"
done >"$WORK/slow/slow.parts"

start_server "$WORK/small" 0
SMALL=http://127.0.0.1:$PORT
start_server "$WORK/slow" 50
SLOW=http://127.0.0.1:$PORT
for i in $(seq 0 $((FILES - 1))); do
  printf 'url = "%s/p/%s"\noutput = "/dev/null"\n' "$SMALL" "$i"
done >"$WORK/small.curl"
for i in $(seq 0 299); do
  printf 'url = "%s/p/%s"\noutput = "/dev/null"\n' "$SLOW" "$i"
done >"$WORK/slow.curl"

# Correctness, untimed: the assembled streams are the parts in order.
for tool in "${TOOLS[@]}"; do
  got=$("$(bin_of "$tool")" -q "$SMALL/many.parts" - | wc -c)
  [ "$got" = $((FILES * 34)) ] || die "$tool gave $got bytes of many.parts, not $((FILES * 34))"
done

for i in $(seq "$RUNS"); do
  for tool in "${TOOLS[@]}"; do
    time_run "$WORK/small-$tool" "$(bin_of "$tool")" -q -j 1 "$SMALL/many.parts" -
    time_run "$WORK/slow8-$tool" "$(bin_of "$tool")" -q "$SLOW/slow.parts" -
    time_run "$WORK/slow1-$tool" "$(bin_of "$tool")" -q -j 1 "$SLOW/slow.parts" -
  done
  time_run "$WORK/small-curl" curl -s -K "$WORK/small.curl"
  time_run "$WORK/slow1-curl" curl -s -K "$WORK/slow.curl"
  note "run $i/$RUNS done"
done

# Prints "LOOPS_PER_SECOND RSS_1S_KIB RSS_END_KIB" for BINARY streaming the
# endless manifest for SECONDS_ENDLESS.
endless() {
  local bin=$1 pid reader started ended rss1 rss2 bytes
  rm -f "$WORK/fifo"
  mkfifo "$WORK/fifo"
  wc -c <"$WORK/fifo" >"$WORK/endless-bytes" &
  reader=$!
  started=$(date +%s.%N)
  "$bin" -q "$SMALL/endless.parts" - >"$WORK/fifo" 2>/dev/null &
  pid=$!
  sleep 1
  rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  sleep $((SECONDS_ENDLESS - 1))
  rss2=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  kill "$pid"
  ended=$(date +%s.%N)
  wait "$pid" 2>/dev/null || true
  wait "$reader"
  bytes=$(cat "$WORK/endless-bytes")
  awk -v b="$bytes" -v s="$started" -v e="$ended" -v r1="$rss1" -v r2="$rss2" \
    'BEGIN { printf "%.0f %s %s\n", b / 68 / (e - s), r1, r2 }'
}
note "endless manifest, $SECONDS_ENDLESS s each"
for tool in "${TOOLS[@]}"; do
  endless "$(bin_of "$tool")" >"$WORK/endless-$tool"
done

# Prints column 1's median of FILE in milliseconds per file (N files).
per_file_ms() {
  awk -v m="$(median "$1" 1)" -v n="$2" 'BEGIN { printf "%.2f\n", m * 1000 / n }'
}
COMMIT=$(bench_commit)
SLOW_CURL=$(median "$WORK/slow1-curl" 1)
row() {
  local tool=$1 slow8 slow1
  slow8=$(median "$WORK/slow8-$tool" 1)
  slow1=$(median "$WORK/slow1-$tool" 1)
  read -r loops rss1 rss2 <"$WORK/endless-$tool"
  cat <<EOT
| $tool $([ "$tool" = baseline ] && echo "($BASELINE)") | $(per_file_ms "$WORK/small-$tool" "$FILES") | $slow8 | $slow1 | $(ratio "$slow1" "$slow8") | $(ratio "$SLOW_CURL" "$slow8") | $loops | $rss1 → $rss2 |
EOT
}
cat <<EOT

## Small answers from a server that splits head and body without TCP_NODELAY

$(date -u +%Y-%m-%d), $(nproc) cores, load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after, partfetch $COMMIT, curl $(curl --version | awk 'NR == 1 { print $2 }'),
Python $(python3 -c 'import platform; print(platform.python_version())') \`http.server\` (HTTP/1.1, \`bench/nagle-server.py\`) on 127.0.0.1.
Medians of $RUNS runs. \`bench/nagle.sh\`.

| client | $FILES × 34 B, one connection: ms per file | 300 × 32 KiB after 50 ms, \`-j 8\` (s) | same, \`-j 1\` (s) | \`-j 1\` / \`-j 8\` | curl one after another / \`-j 8\` | endless 2-part manifest: loops/s | its RSS after 1 s → after $SECONDS_ENDLESS s (KiB) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$(for tool in "${TOOLS[@]}"; do row "$tool"; done)
| curl -K | $(per_file_ms "$WORK/small-curl" "$FILES") | | $SLOW_CURL | | | | |
| target | ≤ 1 | | | ≥ 8 | | ≥ 500 | flat |
EOT
