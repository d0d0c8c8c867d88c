#!/usr/bin/env bash
# A 1 GiB file over HTTPS from nginx with `tcp_nodelay off` on 127.0.0.1,
# written to a file in a tmpfs, against curl in the same run. With Nagle's
# algorithm on, the server holds back the last small segment of each answer
# until the client acknowledges the one before, which Linux delays by up to
# 40 ms: a client that asks for many short ranges waits that long for each.
# Prints, per tool, every run's wall time, the median and the slowest.
#
#   bench/held-back.sh                      # 10 runs of each
#   RUNS=20 bench/held-back.sh
#   BASELINE=OLD/partfetch bench/held-back.sh  # also time another build
#   bench/held-back.sh --quick              # 1 run: checks that everything works
#
# Needs nginx, openssl, curl and GNU time; cleans up on exit.
set -euo pipefail

usage() {
  sed -n '2,14s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-10}
for arg in "$@"; do
  case $arg in
    --quick) RUNS=1 ;;
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
need_tools curl

build_release
bench_workdir
TOOLS=(partfetch curl)
baseline_must_run
[ -n "$BASELINE" ] && TOOLS+=(baseline)
mkdir -p "$WORK/www"
bench_data "$WORK/www/data.bin" 1024
bench_make_pki "$WORK/pki"
PORT=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$PORT" "$WORK/www" "$WORK/pki/server.pem" \
  "$WORK/pki/server.key" "tcp_nodelay off;")"
URL=https://localhost:$PORT/data.bin
OUT=$(mktemp -d /dev/shm/partfetch-held-back.XXXXXX)
trap 'rm -rf -- "$OUT"; bench_cleanup' EXIT
curl -s --cacert "$WORK/pki/ca.pem" -o /dev/null "$URL" # warms the page cache

for i in $(seq "$RUNS"); do
  for j in "${!TOOLS[@]}"; do
    tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
    rm -f "$OUT/data.bin"
    case $tool in
      partfetch) time_run "$WORK/$tool" "$BIN" -q --cacert "$WORK/pki/ca.pem" "$URL" "$OUT/data.bin" ;;
      baseline) time_run "$WORK/$tool" "$BASELINE" -q --cacert "$WORK/pki/ca.pem" "$URL" "$OUT/data.bin" ;;
      curl) time_run "$WORK/$tool" curl -s --cacert "$WORK/pki/ca.pem" -o "$OUT/data.bin" "$URL" ;;
    esac
    [ "$(stat -c %s "$OUT/data.bin")" = 1073741824 ] || die "$tool wrote $(stat -c %s "$OUT/data.bin") bytes"
  done
  note "run $i/$RUNS done"
done

echo "| tool | wall (s), each run, sorted | median | slowest |"
echo "| --- | --- | ---: | ---: |"
for tool in "${TOOLS[@]}"; do
  runs=$(awk '{ print $1 }' "$WORK/$tool" | sort -g | tr '\n' ' ')
  echo "| $tool | $runs| $(median "$WORK/$tool" 1) | $(awk '{ print $1 }' "$WORK/$tool" | sort -g | tail -n 1) |"
done
