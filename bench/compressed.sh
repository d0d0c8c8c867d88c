#!/usr/bin/env bash
# --compressed: a text file nginx gzips on the fly, saved decoded, against
# curl --compressed, wget --compression=gzip and aria2c --http-accept-gzip.
# Prints a Markdown table for BENCHMARKS.md.
#
#   bench/compressed.sh            # a 64 MiB text file, 5 runs of each
#   bench/compressed.sh --quick    # 4 MiB, 1 run
#
# Two nginx servers of the same text/plain file: one gzips it as it sends
# (gzip on, level 1, its default), where nginx's CPU sets the pace; one
# sends a copy gzipped beforehand (gzip_static, `gzip -6`), where the
# clients' decoding shows. Each tool saves it to a file, in turn (the
# order rotates each run); each file must be the original byte for byte.
# nginx's access log gives the bytes each request sent (`$body_bytes_sent`,
# told apart by User-Agent), GNU time the wall time, CPU and peak RSS.
# partfetch without --compressed runs too, for the bytes as stored.
# partfetch is built with `--features gzip`.
set -euo pipefail

SIZE_MIB=64
RUNS=${RUNS:-5}
for arg in "$@"; do
  case $arg in
    --quick) SIZE_MIB=4 RUNS=1 ;;
    -h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_gnu_time
need_tools curl wget aria2c
note "building: cargo build --release --features gzip"
CARGO_TARGET_DIR=target/gzip cargo build --release --quiet --features gzip
BIN=$PWD/target/gzip/release/partfetch

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
mkdir -p "$WORK/www" "$WORK/out"
note "writing a $SIZE_MIB MiB text file"
# Log-like lines: timestamps, words from a small vocabulary, numbers.
python3 - "$WORK/www/log.txt" "$((SIZE_MIB << 20))" <<'EOF'
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = ["GET", "POST", "/api/items", "/static/app.js", "200", "304", "404",
         "user", "session", "cache", "miss", "hit", "upstream", "ms"]
out = bytearray()
i = 0
while len(out) < size:
    line = "2026-12-06T%02d:%02d:%02d.%03dZ %s %d %s\n" % (
        i // 3600000 % 24, i // 60000 % 60, i // 1000 % 60, i % 1000,
        " ".join(rng.choice(words) for _ in range(6)), rng.randrange(100000),
        rng.choice(words))
    out += line.encode()
    i += 1
open(path, "wb").write(out[:size])
EOF
BYTES=$(stat -c %s "$WORK/www/log.txt")
gzip -6 -k "$WORK/www/log.txt"
ON_THE_FLY=$(free_port)
STATIC=$(free_port)
while [ "$STATIC" = "$ON_THE_FLY" ]; do STATIC=$(free_port); done
servers() {
  nginx_server "$ON_THE_FLY" "$WORK/www" "" "" "gzip on; gzip_types text/plain;"
  nginx_server "$STATIC" "$WORK/www" "" "" "gzip_static on;"
}
nginx_start "$WORK/nginx" "$(servers)"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# run_tool NAME SERVER: one command per tool, each with its own
# User-Agent for the access log.
run_tool() {
  local name=$1 server=$2 out=$WORK/out/$1.txt
  local URL="http://127.0.0.1:$server/log.txt"
  name=$name-$server
  rm -f "$out"
  case ${name%-*} in
    partfetch) time_run "$WORK/$name" "$BIN" -q --compressed --user-agent "$name" "$URL" "$out" ;;
    stored) time_run "$WORK/$name" "$BIN" -q --user-agent "$name" "$URL" "$out" ;;
    curl) time_run "$WORK/$name" curl -sf --compressed -A "$name" -o "$out" "$URL" ;;
    wget) time_run "$WORK/$name" wget -q --compression=gzip -U "$name" -O "$out" "$URL" ;;
    aria2c) time_run "$WORK/$name" aria2c -q --http-accept-gzip=true -U "$name" \
      --allow-overwrite=true --auto-file-renaming=false -d "$WORK/out" -o "${name%-*}.txt" "$URL" ;;
  esac
  cmp -s "$out" "$WORK/www/log.txt" || die "$name saved a file that differs from the original"
}

TOOLS=(partfetch curl wget aria2c stored)
for i in $(seq "$RUNS"); do
  # Rotate the order, so no tool always goes first.
  for server in "$ON_THE_FLY" "$STATIC"; do
    for j in "${!TOOLS[@]}"; do
      run_tool "${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}" "$server"
    done
  done
  note "run $i/$RUNS done"
done
nginx_stop "$WORK/nginx"

# bytes NAME: the bytes nginx sent to NAME's requests, divided by the runs.
bytes() {
  awk -v ua="\"$1\"" '$NF == ua { sum += $5 } END { print sum + 0 }' "$WORK/nginx/access.log" |
    awk -v runs="$RUNS" '{ printf "%d\n", $1 / runs }'
}
# table PORT: the rows of the server on PORT.
table() {
  local port=$1 p_wall
  p_wall=$(median "$WORK/partfetch-$port" 1)
  row() {
    local name=$1-$port command=$2 sent wall cpu rss
    sent=$(bytes "$name")
    wall=$(median "$WORK/$name" 1)
    cpu=$(median "$WORK/$name" 2)
    rss=$(median "$WORK/$name" 3)
    echo "| \`$command\` | $sent | $(ratio "$sent" "$BYTES") | $wall | $(ratio "$p_wall" "$wall") | $cpu | $((rss / 1024)) |"
  }
  echo "| command | bytes sent | / file | wall (s) | partfetch --compressed / this | CPU (s) | peak RSS (MiB) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  row partfetch "partfetch --compressed URL FILE"
  row curl "curl --compressed -o FILE URL"
  row wget "wget --compression=gzip -O FILE URL"
  row aria2c "aria2c --http-accept-gzip=true -o FILE URL"
  row stored "partfetch URL FILE"
}

cat <<EOT

## \`RUNS=$RUNS bench/compressed.sh\`: a $SIZE_MIB MiB text file gzip-encoded by nginx, saved decoded

$(date -u +%Y-%m-%d), $(nproc) cores, load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after, partfetch $(bench_commit) built with \`--features gzip\`. nginx with one worker; medians of $RUNS runs, the tools in turn, the order rotating.

Gzipped as sent (\`gzip on\`, level 1):

$(table "$ON_THE_FLY")

Gzipped beforehand (\`gzip_static on\`, \`gzip -6\`):

$(table "$STATIC")
EOT
