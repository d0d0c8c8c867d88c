#!/usr/bin/env bash
# What a file or a manifest part of 1 to 4 MiB, whose size partfetch is not
# told, costs in requests, and in time from a server a round trip away.
# Prints a Markdown table for BENCHMARKS.md.
#
#   bench/requests.sh                          # 3 runs of each
#   RUNS=5 bench/requests.sh
#   BASELINE=OLD/partfetch bench/requests.sh   # also time another build
#
# bench/nagle-server.py serves FILES files of 3 MiB, each answer after
# DELAY_MS (a server that far away: this kernel has no netem), logging
# every request. Timed, with the requests each took from the log:
# 1. a manifest of the files without `(size=…)`, streamed to /dev/null,
#    one part after another (`-j 1`) and with the default window (8),
#    against `curl -K` (one after another) and `aria2c -i` (`-j 1`, and
#    its default of 5 at once);
# 2. one of the files saved, against curl and aria2c.
#
# Needs python3, curl, aria2c and GNU time; cleans up on exit.
set -euo pipefail

usage() {
  sed -n '2,20s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-3}
FILES=40
DELAY_MS=20
for arg in "$@"; do
  case $arg in
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
need_tools curl aria2c python3

build_release
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
baseline_must_run
partfetch_builds
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=
stop_server() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  bench_cleanup
}
trap stop_server EXIT

note "writing the files"
mkdir -p "$WORK/www/p" "$WORK/aria"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/part"
for i in $(seq 0 $((FILES - 1))); do
  cp "$WORK/part" "$WORK/www/p/$i"
  printf 'p/%s\n--\n' "$i"
done >"$WORK/www/files.parts"

PORT=$(free_port)
LOG=$WORK/requests.log
python3 bench/nagle-server.py "$PORT" "$WORK/www" "$DELAY_MS" "$LOG" 2>>"$WORK/server.log" &
SERVER=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do
  curl -s -o /dev/null "$URL/p/0" && break
  sleep 0.05
done
for i in $(seq 0 $((FILES - 1))); do
  printf 'url = "%s/p/%s"\noutput = "/dev/null"\n' "$URL" "$i"
done >"$WORK/files.curl"
for i in $(seq 0 $((FILES - 1))); do
  printf '%s/p/%s\n  out=%s\n' "$URL" "$i" "$i"
done >"$WORK/files.aria2"

# Times COMMAND into RESULT (wall, CPU, RSS) and appends to RESULT.req the
# requests it made to the part files (the manifest's own request aside).
counted() {
  local result=$1 before
  shift
  before=$(grep -c '^/p/' "$LOG" || true)
  time_run "$result" "$@"
  echo $(($(grep -c '^/p/' "$LOG" || true) - before)) >>"$result.req"
}

ARIA2=(aria2c -q --allow-overwrite=true --auto-file-renaming=false -d "$WORK/aria")

# Correctness, untimed: the assembled stream is the parts in order.
for tool in "${TOOLS[@]}"; do
  got=$("$(bin_of "$tool")" -q "$URL/files.parts" - | wc -c)
  [ "$got" = $((FILES * 3 * 1024 * 1024)) ] || die "$tool gave $got bytes of files.parts"
done

for i in $(seq "$RUNS"); do
  for tool in "${TOOLS[@]}"; do
    bin=$(bin_of "$tool")
    counted "$WORK/seq-$tool" "$bin" -q -j 1 "$URL/files.parts" -
    counted "$WORK/window-$tool" "$bin" -q "$URL/files.parts" -
    rm -f "$WORK/one"
    counted "$WORK/one-$tool" "$bin" -q "$URL/p/0" -o "$WORK/one"
    cmp -s "$WORK/one" "$WORK/part" || die "$tool saved a wrong file"
  done
  counted "$WORK/seq-curl" curl -s -K "$WORK/files.curl"
  counted "$WORK/seq-aria2c" "${ARIA2[@]}" -j 1 -i "$WORK/files.aria2"
  counted "$WORK/window-aria2c" "${ARIA2[@]}" -i "$WORK/files.aria2"
  rm -f "$WORK/one"
  counted "$WORK/one-curl" curl -s -o "$WORK/one" "$URL/p/0"
  counted "$WORK/one-aria2c" "${ARIA2[@]}" -o one "$URL/p/0"
  note "run $i/$RUNS done"
done

# Median requests a file of RESULT's runs (N files a run).
per_file() {
  awk -v n="$2" '{ print $1 / n }' "$1.req" | sort -g | awk '
    { v[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ms() {
  awk -v s="$1" -v n="$2" 'BEGIN { printf "%.0f\n", s * 1000 / n }'
}
# "REQUESTS | WALL (MS a file) |" for RESULT of N files a run, or empty
# cells when the tool was not run so.
cell() {
  local result=$1 n=$2 wall
  if [ ! -f "$result" ]; then
    echo " | |"
    return
  fi
  wall=$(median "$result" 1)
  echo "$(per_file "$result" "$n") | $wall ($(ms "$wall" "$n") ms a file) |"
}
COMMIT=$(bench_commit)
row() {
  local tool=$1 label=$1
  [ "$tool" = baseline ] && label="baseline ($BASELINE)"
  [ "$tool" = curl ] && label="curl -K"
  [ "$tool" = aria2c ] && label="aria2c -i"
  echo "| $label | $(cell "$WORK/seq-$tool" "$FILES") $(cell "$WORK/window-$tool" "$FILES") $(cell "$WORK/one-$tool" 1)"
}
cat <<EOT

## Requests for files of 3 MiB whose size is not told, from a server $DELAY_MS ms away

$(date -u +%Y-%m-%d), $(nproc) cores, load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after, partfetch $COMMIT,
curl $(curl --version | awk 'NR == 1 { print $2 }'), aria2c $(aria2c --version | awk 'NR == 1 { print $3 }'),
\`bench/nagle-server.py\` on 127.0.0.1 answering each request after $DELAY_MS ms. Medians of $RUNS runs. \`bench/requests.sh\`.

| client | $FILES parts one after another: requests a file | wall (s) | with the default window: requests a file | wall (s) | one file saved: requests | wall (s) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
$(for tool in "${TOOLS[@]}" curl aria2c; do row "$tool"; done)
EOT
