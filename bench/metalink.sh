#!/usr/bin/env bash
# A Metalink download against aria2c's: one file listed with two mirrors
# (two nginx servers on 127.0.0.1, each capping a request at 20 MiB/s,
# `limit_rate 20m`), its SHA-256 and SHA-256 pieces of 1 MiB, over 4
# connections. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/metalink.sh            # 256 MiB, 3 runs of each
#   RUNS=5 bench/metalink.sh     # more runs
#   bench/metalink.sh --quick    # 64 MiB, 1 run: checks that it works
#
# 1. Both mirrors good: `partfetch FILE.meta4 DIR -n 4` against
#    `aria2c -M FILE.meta4 -x 4 -s 4`, and partfetch given the same
#    URLs as `URL --mirror URL --checksum sha256=…` (no piece hashes):
#    what checking every piece costs.
# 2. The second mirror serves other bytes of the same length: each tool
#    must catch it at the piece and finish from the first; the wall time,
#    and whether the file saved is the one listed.
#
# Everything lives in one directory under /tmp, removed on exit; the
# nginx servers it starts are stopped on exit, Ctrl-C included.
set -euo pipefail

SIZE_MIB=256
RUNS=${RUNS:-3}
for arg in "$@"; do
  case $arg in
    --quick) SIZE_MIB=64 RUNS=1 ;;
    -h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
need_gnu_time
need_tools aria2c:aria2
build_release

bench_workdir
mkdir -p "$WORK/good" "$WORK/bad" "$WORK/out"
bench_data "$WORK/good/data.bin" "$SIZE_MIB"
# Other bytes of the same length: one flipped byte in every MiB.
python3 - "$WORK/good/data.bin" "$WORK/bad/data.bin" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
for at in range(4096, len(data), 1 << 20):
    data[at] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
PORT_A=$(free_port)
PORT_B=$(free_port)
PORT_BAD=$(free_port)
nginx_start "$WORK/nginx" "$(nginx_server "$PORT_A" "$WORK/good" "" "" "limit_rate 20m;")
$(nginx_server "$PORT_B" "$WORK/good" "" "" "limit_rate 20m;")
$(nginx_server "$PORT_BAD" "$WORK/bad" "" "" "limit_rate 20m;")"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
URL_A=http://127.0.0.1:$PORT_A/data.bin
URL_B=http://127.0.0.1:$PORT_B/data.bin
URL_BAD=http://127.0.0.1:$PORT_BAD/data.bin
SHA=$(sha256sum "$WORK/good/data.bin" | cut -d' ' -f1)

# Writes a .meta4 of data.bin with URLs $2 (priority 1) and $3 (2) to $1.
meta4() {
  python3 - "$WORK/good/data.bin" "$1" "$2" "$3" <<'PY'
import hashlib, sys
data, out, first, second = sys.argv[1:]
pieces, whole, size = [], hashlib.sha256(), 0
with open(data, "rb") as f:
    while block := f.read(1 << 20):
        pieces.append(hashlib.sha256(block).hexdigest())
        whole.update(block)
        size += len(block)
hashes = "".join(f"<hash>{h}</hash>" for h in pieces)
open(out, "w").write(f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
<file name="data.bin"><size>{size}</size>
<hash type="sha-256">{whole.hexdigest()}</hash>
<pieces length="{1 << 20}" type="sha-256">{hashes}</pieces>
<url priority="1">{first}</url><url priority="2">{second}</url>
</file></metalink>
""")
PY
}
meta4 "$WORK/good.meta4" "$URL_A" "$URL_B"
meta4 "$WORK/bad.meta4" "$URL_A" "$URL_BAD"

# Sets CMD to TOOL's command for SCENARIO (good or bad), saving into $WORK/out.
command_of() {
  local tool=$1 scenario=$2
  case $tool in
    partfetch) CMD=("$BIN" -q -n 4 "$WORK/$scenario.meta4" "$WORK/out") ;;
    plain) CMD=("$BIN" -q -n 4 "$URL_A" --mirror "$URL_B" --checksum "sha256=$SHA" "$WORK/out/data.bin") ;;
    aria2c) CMD=(aria2c -q -x 4 -s 4 -k 1M --allow-overwrite=true -d "$WORK/out" -M "$WORK/$scenario.meta4") ;;
  esac
}

TOOLS=(partfetch aria2c plain)
for tool in "${TOOLS[@]}"; do : >"$WORK/good-$tool"; : >"$WORK/bad-$tool"; done
for i in $(seq "$RUNS"); do
  for j in "${!TOOLS[@]}"; do
    tool=${TOOLS[$(((i + j) % ${#TOOLS[@]}))]}
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    command_of "$tool" good
    time_run "$WORK/good-$tool" "${CMD[@]}"
    cmp -s "$WORK/out/data.bin" "$WORK/good/data.bin" || die "$tool: the file saved differs"
    [ "$tool" = plain ] && continue
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    command_of "$tool" bad
    start=$(date +%s.%N)
    code=0
    "${CMD[@]}" >/dev/null 2>&1 || code=$?
    wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
    same=no
    cmp -s "$WORK/out/data.bin" "$WORK/good/data.bin" 2>/dev/null && same=yes
    echo "$wall $code $same" >>"$WORK/bad-$tool"
    note "run $i/$RUNS $tool: good $(tail -n 1 "$WORK/good-$tool"), bad mirror $(tail -n 1 "$WORK/bad-$tool")"
  done
done
nginx_stop "$WORK/nginx"

med() { median "$WORK/$1" "$2"; }
outcomes() { awk '{ print "exit " $2 ", file " ($3 == "yes" ? "right" : "wrong") }' "$WORK/$1" | sort | uniq -c | awk '{ $1 = $1 "×"; print }' | paste -sd ';' -; }
cat <<EOF

## \`bench/metalink.sh\`: a .meta4 with two mirrors, $SIZE_MIB MiB, 4 connections, nginx \`limit_rate 20m\`

$(date -u +%Y-%m-%d), $(nproc) cores, partfetch $(bench_commit);
$(aria2c --version | head -n 1). Medians of $RUNS runs, each run started by
another tool; every file compared with the one served. The document gives
the SHA-256 and SHA-256 pieces of 1 MiB.

| measurement | partfetch FILE.meta4 | aria2c -M FILE.meta4 | partfetch URL --mirror --checksum | partfetch / aria2c |
| --- | ---: | ---: | ---: | ---: |
| both mirrors good: wall (s) | $(med good-partfetch 1) | $(med good-aria2c 1) | $(med good-plain 1) | $(ratio "$(med good-partfetch 1)" "$(med good-aria2c 1)") |
| both mirrors good: CPU (s) | $(med good-partfetch 2) | $(med good-aria2c 2) | $(med good-plain 2) | $(ratio "$(med good-partfetch 2)" "$(med good-aria2c 2)") |
| both mirrors good: peak RSS (KiB) | $(med good-partfetch 3) | $(med good-aria2c 3) | $(med good-plain 3) | |
| second mirror wrong: wall (s) | $(med bad-partfetch 1) | $(med bad-aria2c 1) | | $(ratio "$(med bad-partfetch 1)" "$(med bad-aria2c 1)") |
| second mirror wrong: outcome | $(outcomes bad-partfetch) | $(outcomes bad-aria2c) | | |
EOF
