#!/usr/bin/env bash
# How the way a reader waits for a socket changes the cost of a 1 GiB
# download from nginx on 127.0.0.1: bench/reads.c (blocking recv, blocking
# with SO_RCVLOWAT, non-blocking after poll, non-blocking with a blocking
# one-byte peek) at 64, 128 and 256 KiB, against curl in the same run.
# Prints, per reader, every run's wall time and the median.
#
#   bench/reads.sh            # 5 runs of each
#   RUNS=8 bench/reads.sh
#   bench/reads.sh --quick    # 1 run: checks that everything works
#
# Needs gcc, nginx, curl and GNU time; cleans up on exit.
set -euo pipefail

usage() {
  sed -n '2,12s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
need_tools gcc:gcc curl

bench_workdir
gcc -O2 -Wall -o "$WORK/reads" bench/reads.c
mkdir -p "$WORK/www"
bench_data "$WORK/www/data.bin" 1024
PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$PORT" "$WORK/www")"
curl -s -o /dev/null "http://127.0.0.1:$PORT/data.bin" # warms the page cache

READERS=(curl)
for size in 65536 131072 262144; do
  for mode in blocking lowat poll peek; do
    READERS+=("$mode-$size")
  done
done
for i in $(seq "$RUNS"); do
  for j in "${!READERS[@]}"; do
    reader=${READERS[$(((i + j) % ${#READERS[@]}))]}
    if [ "$reader" = curl ]; then
      time_run "$WORK/$reader" curl -s -o /dev/null "http://127.0.0.1:$PORT/data.bin"
    else
      time_run "$WORK/$reader" "$WORK/reads" "$PORT" data.bin "${reader#*-}" "${reader%-*}" 2>/dev/null
    fi
  done
  note "run $i/$RUNS done"
done

echo "| reader | buffer | wall (s), each run | median |"
echo "| --- | ---: | --- | ---: |"
for reader in "${READERS[@]}"; do
  runs=$(awk '{ print $1 }' "$WORK/$reader" | sort -g | tr '\n' ' ')
  if [ "$reader" = curl ]; then
    echo "| curl | | $runs| $(median "$WORK/$reader" 1) |"
  else
    echo "| ${reader%-*} | $((${reader#*-} / 1024)) KiB | $runs| $(median "$WORK/$reader" 1) |"
  fi
done
