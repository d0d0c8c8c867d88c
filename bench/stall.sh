#!/usr/bin/env bash
# One connection of a download stalls: partfetch against aria2c and axel
# (4 connections each) and curl (one), on 127.0.0.1. The server
# (bench/stall-server.py) serves a 256 MiB file; the first answer to reach
# byte 100 MiB stops there, sends nothing for STALL seconds, then closes
# its connection. Two cases: each answer capped at 20 MiB/s (a download
# in pieces for partfetch), and uncapped (partfetch then asks for the rest
# after its first piece as one stream, as curl does; curl is told to
# resume after a connection closed early: `--retry 3 --retry-all-errors
# -C -`). Written to a tmpfs;
# every output is checked against the file's SHA-256. Prints, per case,
# every run's wall time per tool and the median.
#
#   bench/stall.sh                     # 3 runs of each, a 30 s stall
#   RUNS=5 STALL=60 bench/stall.sh
#   BASELINE=OLD/partfetch bench/stall.sh  # also time another build
#   bench/stall.sh --quick             # 1 run, a 3 s stall: checks that everything works
#
# Needs python3, curl, aria2c, axel and GNU time; cleans up on exit.
set -euo pipefail

usage() {
  sed -n '2,19s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-3}
STALL=${STALL:-30}
for arg in "$@"; do
  case $arg in
    --quick) RUNS=1 STALL=3 ;;
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
need_tools python3 aria2c axel curl

build_release
bench_workdir
baseline_must_run
bench_data "$WORK/data.bin" 256
WANT=$(sha256sum <"$WORK/data.bin")
OUT=$(mktemp -d /dev/shm/partfetch-stall.XXXXXX)
SERVERS=()
trap 'kill "${SERVERS[@]}" 2>/dev/null; rm -rf -- "$OUT"; bench_cleanup' EXIT

# Starts a stall server capping each answer at RATE bytes/s (0: none);
# sets PORT.
start_server() {
  PORT=$(free_port)
  python3 bench/stall-server.py "$PORT" "$WORK/data.bin" $((100 << 20)) "$STALL" "$1" \
    2>"$WORK/server-$PORT.log" &
  SERVERS+=($!)
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/reset" && return
    sleep 0.1
  done
  die "the stall server on port $PORT did not start"
}

# Times TOOLS against the server on PORT, RUNS rounds; prints the table
# under TITLE (LABEL names the case's files).
#   compare LABEL TITLE TOOL...
compare() {
  local label=$1 title=$2 url=http://127.0.0.1:$PORT/data.bin tool i j
  shift 2
  local tools=("$@")
  [ -n "$BASELINE" ] && tools+=(baseline)
  for i in $(seq "$RUNS"); do
    for j in "${!tools[@]}"; do
      tool=${tools[$(((i + j) % ${#tools[@]}))]}
      rm -f "$OUT"/data.bin*
      curl -sf -o /dev/null "http://127.0.0.1:$PORT/reset"
      case $tool in
        partfetch) time_run "$WORK/$label-$tool" "$BIN" -q -n 4 "$url" "$OUT/data.bin" ;;
        baseline) time_run "$WORK/$label-$tool" "$BASELINE" -q -n 4 "$url" "$OUT/data.bin" ;;
        aria2c) time_run "$WORK/$label-$tool" aria2c -q -x 4 -s 4 --file-allocation=none \
          --allow-overwrite=true -d "$OUT" -o data.bin "$url" ;;
        axel) time_run "$WORK/$label-$tool" axel -q -n 4 -o "$OUT/data.bin" "$url" ;;
        # curl stops at a connection closed early unless told to resume.
        curl) time_run "$WORK/$label-$tool" curl -s --retry 3 --retry-all-errors -C - \
          -o "$OUT/data.bin" "$url" ;;
      esac
      [ "$(sha256sum <"$OUT/data.bin")" = "$WANT" ] || die "$tool wrote other bytes"
    done
    note "$label: run $i/$RUNS done"
  done
  echo
  echo "### $title"
  echo
  echo "| tool | wall (s), each run, sorted | median |"
  echo "| --- | --- | ---: |"
  for tool in "${tools[@]}"; do
    echo "| $tool | $(awk '{ print $1 }' "$WORK/$label-$tool" | sort -g | tr '\n' ' ')| $(median "$WORK/$label-$tool" 1) |"
  done
}

start_server $((20 << 20))
compare capped "Each answer at 20 MiB/s" partfetch aria2c axel
start_server 0
compare uncapped "Uncapped" partfetch curl aria2c axel
