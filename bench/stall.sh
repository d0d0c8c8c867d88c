#!/usr/bin/env bash
# One connection of a download in pieces stalls: partfetch against aria2c
# and axel, each with 4 connections to one server on 127.0.0.1. The server
# (bench/stall-server.py) sends each answer at 20 MiB/s at most, and the
# first answer for a range starting at 64 MiB or later a head and 1000
# bytes, then nothing for STALL seconds, then it closes. A 256 MiB file,
# written to a tmpfs; without the stall each tool takes about 3.2 s.
# Prints every run's wall time per tool, and the median.
#
#   bench/stall.sh                     # 3 runs of each, a 30 s stall
#   RUNS=5 STALL=60 bench/stall.sh
#   BASELINE=OLD/partfetch bench/stall.sh  # also time another build
#
# Needs python3, aria2c, axel and GNU time; cleans up on exit.
set -euo pipefail
RUNS=${RUNS:-3}
STALL=${STALL:-30}
BASELINE=${BASELINE:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
for tool in python3 aria2c axel curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

build_release
bench_workdir
TOOLS=(partfetch aria2c axel)
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || die "BASELINE=$BASELINE is not an executable"
  TOOLS+=(baseline)
fi
bench_data "$WORK/data.bin" 256
PORT=$(free_port)
python3 bench/stall-server.py "$PORT" "$WORK/data.bin" $((64 << 20)) "$STALL" $((20 << 20)) \
  2>"$WORK/server.log" &
SERVER=$!
OUT=$(mktemp -d /dev/shm/partfetch-stall.XXXXXX)
trap 'kill "$SERVER" 2>/dev/null; rm -rf -- "$OUT"; bench_cleanup' EXIT
URL=http://127.0.0.1:$PORT/data.bin
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/reset" && break
  sleep 0.1
done
WANT=$(sha256sum <"$WORK/data.bin")

for i in $(seq "$RUNS"); do
  for j in "${!TOOLS[@]}"; do
    tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
    rm -f "$OUT"/data.bin*
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/reset"
    case $tool in
      partfetch) time_run "$WORK/$tool" "$BIN" -q -n 4 "$URL" "$OUT/data.bin" ;;
      baseline) time_run "$WORK/$tool" "$BASELINE" -q -n 4 "$URL" "$OUT/data.bin" ;;
      aria2c) time_run "$WORK/$tool" aria2c -q -x 4 -s 4 --file-allocation=none \
        --allow-overwrite=true -d "$OUT" -o data.bin "$URL" ;;
      axel) time_run "$WORK/$tool" axel -q -n 4 -o "$OUT/data.bin" "$URL" ;;
    esac
    [ "$(sha256sum <"$OUT/data.bin")" = "$WANT" ] || die "$tool wrote other bytes"
  done
  note "run $i/$RUNS done"
done

echo "| tool | wall (s), each run, sorted | median |"
echo "| --- | --- | ---: |"
for tool in "${TOOLS[@]}"; do
  runs=$(awk '{ print $1 }' "$WORK/$tool" | sort -g | tr '\n' ' ')
  echo "| $tool | $runs| $(median "$WORK/$tool" 1) |"
done
