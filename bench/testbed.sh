#!/usr/bin/env bash
# partfetch against aria2c and axel on a test bed of mirrors built on this
# machine: network namespaces joined to the root namespace by veth pairs,
# each with its own server and its own bandwidth cap. Prints one Markdown
# table per case for BENCHMARKS.md. Run as root (namespaces, tc).
#
#   bench/testbed.sh            # full sizes, 3 runs of each tool per case
#   RUNS=5 bench/testbed.sh     # more runs
#   bench/testbed.sh --quick    # small files, 1 run: checks that it works
#   CASES="1 3" bench/testbed.sh  # only some cases (1, 1b, 1c, 2, 3, 4)
#   BASELINE=OLD/partfetch bench/testbed.sh  # also time another build of
#                               # partfetch, as "baseline", in cases 1, 1c, 2
#
# 1.  One server capping each TCP connection at 20 MiB/s (tc htb, one class
#     per client port), 256 MiB, 8 connections. 1b: the same with nginx's
#     `limit_rate 20m` instead, which throttles per request, not per
#     connection (see the notes in the output). 1c: the same cap, served by
#     `partfetch serve --delay 25`: every answer starts 25 ms after its
#     request, as over a link with a 25 ms round trip.
# 2.  Four mirrors capped at 40, 40, 40 and 4 MiB/s per host (tc tbf), one
#     dead mirror (no listener) and one answering 503; 256 MiB.
# 3.  A manifest of 2 000 parts of 64 KiB alternating over three hosts that
#     each answer after 25 ms (`partfetch serve --delay 25`).
# 4.  One uncapped server, 1 GiB: partfetch `-n 4` against `-n 1`.
#
# Owns: the namespaces pftb-m1..pftb-m4 (veth pftb-hK in the root namespace
# with 10.77.K.1/24, pftb-nK inside with 10.77.K.2/24), their qdiscs, the
# servers inside them, a work directory under /tmp and an output directory
# under /dev/shm. All of it is removed on exit, Ctrl-C included. Nothing
# routes out of the machine: every address is on a veth of this machine.
# The CMD_<label> arrays each case sets are read by compare() through a
# nameref, which shellcheck cannot follow.
# shellcheck disable=SC2034
set -euo pipefail

usage() {
  sed -n '2,31s/^# \{0,1\}//p' "$0"
}

QUICK=0
RUNS=${RUNS:-3}
CASES=${CASES:-1 1b 1c 2 3 4}
BASELINE=${BASELINE:-}
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  SIZE_MIB=32 PARTS=200 BIG_MIB=128
else
  SIZE_MIB=256 PARTS=2000 BIG_MIB=1024
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive

# ---------------------------------------------------------------- checks

[ "$(id -u)" = 0 ] || die "run as root: network namespaces and tc need it"
need_tools ip:iproute2 tc:iproute2 aria2c:aria2 axel:axel cargo cmp
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
need_gnu_time
NS_PREFIX=pftb
if ip netns list | grep -q "^$NS_PREFIX-"; then
  die "namespaces $NS_PREFIX-* exist already (another run, or a killed one: ip netns del NAME)"
fi
if ip -4 route show | grep -q '^10\.77\.'; then
  die "10.77.0.0/16 is already routed here; this test bed needs it"
fi

# ---------------------------------------------------------------- build

build_release

# ---------------------------------------------------------------- cleanup

bench_workdir
# The binary is copied so that a rebuild by someone else cannot change it
# between runs.
cp "$BIN" "$WORK/partfetch"
BIN=$WORK/partfetch
baseline_must_run
if [ -n "$BASELINE" ]; then
  cp "$BASELINE" "$WORK/baseline"
  BASELINE=$WORK/baseline
fi
OUT=$(mktemp -d /dev/shm/partfetch-testbed.XXXXXX)
NAMESPACES=()
SERVE_PIDS=()

# Stops the partfetch servers, then lib.sh's cleanup (every nginx, $WORK),
# then anything else still running in our namespaces, then removes the
# namespaces (their veth pairs go with them) and $OUT.
testbed_cleanup() {
  local pid ns
  for pid in "${SERVE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bench_cleanup
  for ns in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  for ns in "${NAMESPACES[@]}"; do
    ip link del "$NS_PREFIX-h${ns##*-m}" 2>/dev/null || true
  done
  rm -rf -- "$OUT"
}
trap testbed_cleanup EXIT
note "work directory: $WORK; output directory: $OUT"

# No proxy from the environment may come between the tools and the servers.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# ---------------------------------------------------------------- network

# Host K: namespace pftb-mK, reached at 10.77.K.2 over the veth pair
# pftb-hK (root namespace, 10.77.K.1) / pftb-nK (inside).
ns_of() { echo "$NS_PREFIX-m$1"; }
addr_of() { echo "10.77.$1.2"; }
dev_of() { echo "$NS_PREFIX-n$1"; }
in_ns() {
  local k=$1
  shift
  ip netns exec "$(ns_of "$k")" "$@"
}

make_host() {
  local k=$1 ns host dev
  ns=$(ns_of "$k") host=$NS_PREFIX-h$k dev=$(dev_of "$k")
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip link add "$host" type veth peer name "$dev"
  ip link set "$dev" netns "$ns"
  ip addr add "10.77.$k.1/24" dev "$host"
  ip link set "$host" up
  in_ns "$k" ip addr add "$(addr_of "$k")/24" dev "$dev"
  in_ns "$k" ip link set "$dev" up
  in_ns "$k" ip link set lo up
}

for k in 1 2 3 4; do
  make_host "$k"
done
note "namespaces: ${NAMESPACES[*]}"

# Rates in bits per second for tc (MiB/s × 8 × 2^20).
bits() { echo "$(($1 * 8 * 1048576))bit"; }

# Removes whatever qdisc host K's egress (server to client) has.
cap_none() {
  in_ns "$1" tc qdisc del dev "$(dev_of "$1")" root 2>/dev/null || true
}

# Caps everything host K sends at MIB MiB/s (token bucket).
cap_host() {
  local k=$1 mib=$2
  cap_none "$k"
  in_ns "$k" tc qdisc add dev "$(dev_of "$k")" root tbf rate "$(bits "$mib")" \
    burst 256kb latency 50ms
}

# Caps each TCP connection host K serves at MIB MiB/s: an htb class per
# value of the low byte of the client's port (u32 hash on it), 256 classes.
# Connections of one client get nearby ephemeral ports, so two of one run
# share a class only if their ports are 256 apart (the check after each
# run counts the ports seen in the access log, not their classes; see the
# output's notes). The kernel here has no fq (maxrate) or flow classifier.
cap_per_connection() {
  local k=$1 mib=$2 dev batch i
  dev=$(dev_of "$k")
  batch=$WORK/htb-$k.tc
  cap_none "$k"
  {
    echo "qdisc add dev $dev root handle 1: htb default 1"
    echo "class add dev $dev parent 1: classid 1:1 htb rate 10gbit quantum 60000"
    for i in $(seq 0 255); do
      printf 'class add dev %s parent 1: classid 1:%x htb rate %s burst 64k cburst 64k quantum 60000\n' \
        "$dev" $((0x100 + i)) "$(bits "$mib")"
    done
    echo "filter add dev $dev parent 1: prio 1 handle 2: protocol ip u32 divisor 256"
    for i in $(seq 0 255); do
      printf 'filter add dev %s parent 1: protocol ip prio 1 u32 ht 2:%x: match u32 0 0 flowid 1:%x\n' \
        "$dev" "$i" $((0x100 + i))
    done
    # Word at offset 20 of an IPv4 header without options: TCP source and
    # destination port; the mask keeps the low byte of the destination
    # (the client's) port.
    echo "filter add dev $dev parent 1: protocol ip prio 1 u32 ht 800:: match ip protocol 6 0xff hashkey mask 0x000000ff at 20 link 2:"
  } >"$batch"
  in_ns "$k" tc -batch "$batch"
}

# ---------------------------------------------------------------- servers

PORT=8080        # every server listens on this port inside its namespace
DEAD_PORT=8081   # nothing ever listens here
E503_PORT=8503

# A server block for nginx inside host K (nginx_server in lib.sh listens on
# 127.0.0.1 only).
ns_server() {
  local k=$1 port=$2 root=$3 extra=${4:-}
  cat <<EOF
    server {
        listen $(addr_of "$k"):$port;
        root $root;
        keepalive_requests 100000;
        $extra
    }
EOF
}

# Starts nginx inside host K with the given server blocks, in $WORK/ngx-TAG-K.
ns_nginx() {
  local k=$1 tag=$2 servers=$3
  NGINX_WRAP="ip netns exec $(ns_of "$k")" nginx_start "$WORK/ngx-$tag-$k" "$servers"
}

stop_nginx() {
  local dir
  for dir in "$WORK"/ngx-"$1"-*; do
    [ -d "$dir" ] && nginx_stop "$dir"
  done
  return 0
}

# Starts `partfetch serve DIR --delay MS` inside host K; waits until it
# listens (it prints its address on stderr first).
ns_serve() {
  local k=$1 dir=$2 delay=$3 log=$WORK/serve-$1.log i
  : >"$log"
  # Not through in_ns: $! must be the server itself (ip netns exec execs it).
  ip netns exec "$(ns_of "$k")" "$BIN" serve "$dir" --listen "$(addr_of "$k"):$PORT" \
    --delay "$delay" 2>"$log" &
  SERVE_PIDS+=($!)
  for i in $(seq 100); do
    [ -s "$log" ] && return 0
    sleep 0.05
  done
  die "partfetch serve did not start in $(ns_of "$k"): $(cat "$log")"
}

stop_serve() {
  local pid
  for pid in "${SERVE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVE_PIDS=()
}

# ---------------------------------------------------------------- data

mkdir -p "$WORK/www"
note "generating ${SIZE_MIB} MiB and ${BIG_MIB} MiB files (a random 16 MiB block, repeated)"
bench_data "$WORK/www/data.bin" "$SIZE_MIB"
bench_data "$WORK/www/big.bin" "$BIG_MIB"
# Every mirror serves this same file, so every nginx sends the same ETag
# (mtime-size) and Last-Modified.

# ---------------------------------------------------------------- measuring

LOADS=()
load_now() { uptime | sed 's/.*load average: //'; }

# The output file of one run; removed after the run's check.
DEST=$OUT/dest.bin

# Runs one timed download: time_run into $WORK/CASE-LABEL, then checks the
# output (size always; bytes with cmp on the first run of each label) and
# removes it. EXPECT is the file the output must equal ("" for none).
#   timed CASE LABEL EXPECT COMMAND...
timed() {
  local case=$1 label=$2 expect=$3 file
  shift 3
  file=$WORK/$case-$label
  rm -f "$DEST"
  time_run "$file" "$@"
  if [ -n "$expect" ]; then
    [ -f "$DEST" ] || die "$label left no output for case $case"
    if [ "$(stat -c %s "$DEST")" != "$(stat -c %s "$expect")" ]; then
      die "$label's output for case $case has $(stat -c %s "$DEST") bytes, not $(stat -c %s "$expect")"
    fi
    if [ "$(wc -l <"$file")" = 1 ] && ! cmp -s "$DEST" "$expect"; then
      die "$label's output for case $case differs from the file served"
    fi
  fi
  rm -f "$DEST"
  note "case $case $label: $(tail -n 1 "$file") (wall s, cpu s, rss KiB)"
}

# What a cap of MIB MiB/s leaves for the file's bytes: tc counts whole
# frames (Ethernet, IP and TCP headers, about 4.4 % at MTU 1500), so one
# plain stream from URL (BYTES of it, with curl) shows the share of the cap
# any client can get. Prints that share (goodput / cap).
#   payload_share URL MIB BYTES
payload_share() {
  local speed
  speed=$(curl -s -o /dev/null -r "0-$(($3 - 1))" -w '%{speed_download}' "$1")
  awk -v s="$speed" -v m="$2" 'BEGIN { printf "%.4f", s / (m * 1048576) }'
}

# The command lines, by case and label, for the tables.
declare -A CMDLINE

# Runs each LABEL's command RUNS times, rotating which goes first. The
# commands are in the arrays CMD_<label> (set by the case); their outputs
# go to $DEST.
#   compare CASE EXPECT LABEL...
compare() {
  local case=$1 expect=$2 run i n label
  shift 2
  local labels=("$@")
  n=${#labels[@]}
  for label in "${labels[@]}"; do
    : >"$WORK/$case-$label"
    local -n cmd="CMD_$label"
    CMDLINE[$case-$label]=$(printf '%s ' "${cmd[@]}" | sed "s|$BIN|partfetch|; s|$WORK/baseline|partfetch|; s|$DEST|OUT|g; s|$OUT|OUTDIR|g; s| $||")
  done
  for run in $(seq "$RUNS"); do
    for i in $(seq 0 $((n - 1))); do
      label=${labels[$(((i + run - 1) % n))]}
      local -n cmd="CMD_$label"
      timed "$case" "$label" "$expect" "${cmd[@]}"
    done
  done
}

# Medians: wall (1), CPU (2), RSS in KiB (3) of CASE-LABEL.
med() { median "$WORK/$1-$2" "$3"; }
mib_of_kib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a * b }'; }

# One table row per label: tool, command, medians, and wall / REF.
#   rows CASE REF LABEL...
rows() {
  local case=$1 ref=$2 label wall
  shift 2
  for label in "$@"; do
    wall=$(med "$case" "$label" 1)
    echo "| $label | \`${CMDLINE[$case-$label]}\` | $wall | $(med "$case" "$label" 2) | $(mib_of_kib "$(med "$case" "$label" 3)") | $(ratio "$wall" "$ref") |"
  done
}

table_head() {
  echo "| tool | command | wall (s) | CPU (s) | peak RSS (MiB) | wall / $1 |"
  echo "| --- | --- | ---: | ---: | ---: | ---: |"
}

# The target row for partfetch's peak RSS in CASE (label LABEL).
rss_row() {
  local rss
  rss=$(med "$1" "$2" 3)
  echo "| $2 peak RSS ≤ 64 MiB | $(mib_of_kib "$rss") MiB | $(meets "$rss" 65536) |"
}

# The tables and notes of the cases, printed at the end.
REPORT=$WORK/report.md
: >"$REPORT"
report() { printf '%s\n' "$@" >>"$REPORT"; }

aria_cmd() { echo aria2c -q --file-allocation=none --allow-overwrite=true --auto-file-renaming=false -d "$OUT" -o dest.bin; }

# The tools a case times, into LABELS: with BASELINE, CMD_partfetch run by
# the other build is one more, `baseline`.
set_labels() {
  LABELS=(partfetch aria2c axel)
  if [ -n "$BASELINE" ]; then
    CMD_baseline=("$BASELINE" "${CMD_partfetch[@]:1}")
    LABELS+=(baseline)
  fi
}

# ---------------------------------------------------------------- case 1

case_1() {
  local tag=$1 extra=$2
  local url size ideal pf
  url=http://$(addr_of 1):$PORT/data.bin
  ns_nginx 1 "c$tag" "$(ns_server 1 "$PORT" "$WORK/www" "$extra")"
  CMD_partfetch=("$BIN" -q -n 8 "$url" "$DEST")
  # -k1M (smallest split 1 MiB, default 20 MiB): aria2c at its best, as
  # partfetch's pieces are 1 MiB.
  # shellcheck disable=SC2207 # aria_cmd's words are plain options.
  CMD_aria2c=($(aria_cmd) -x8 -s8 -k1M "$url")
  CMD_axel=(axel -q -n 8 -o "$DEST" "$url")
  LOADS+=("case $tag: $(load_now)")
  local share=1
  [ -z "$extra" ] && share=$(payload_share "$url" 20 $((16 << 20)))
  set_labels
  compare "$tag" "$WORK/www/data.bin" "${LABELS[@]}"
  # Connections per tool and run: distinct nginx connection numbers per
  # user agent, over RUNS.
  local conns
  conns=$(awk -F'"' -v runs="$RUNS" '{ split($1, f, " "); ua = $4; sub("/.*", "", ua); c[ua " " f[1]] = 1 }
    END { for (k in c) { split(k, p, " "); n[p[1]]++ } for (u in n) printf "%s %.1f; ", u, n[u] / runs }' \
    "$WORK/ngx-c$tag-1/access.log" | sed 's/; $//')
  stop_nginx "c$tag"
  cap_none 1
  size=$SIZE_MIB
  ideal=$(awk -v s="$size" 'BEGIN { printf "%.3f", s / (8 * 20) }')
  local payload_ideal
  payload_ideal=$(awk -v i="$ideal" -v f="$share" 'BEGIN { printf "%.3f", i / f }')
  pf=$(med "$tag" partfetch 1)
  {
    table_head "ideal"
    rows "$tag" "$ideal" "${LABELS[@]}"
    echo
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    echo "| partfetch ≤ 1.05 × ideal ($ideal s) | $pf s ($(ratio "$pf" "$ideal") ×) | $(meets "$pf" "$(times "$ideal" 1.05)") |"
    [ "$share" = 1 ] || echo "| (for reference) partfetch / payload ideal ($payload_ideal s: one connection gets $share of the cap for the file's bytes) | $(ratio "$pf" "$payload_ideal") × | |"
    echo "| partfetch ≤ aria2c | $(ratio "$pf" "$(med "$tag" aria2c 1)") × | $(meets "$pf" "$(med "$tag" aria2c 1)") |"
    echo "| partfetch ≤ axel | $(ratio "$pf" "$(med "$tag" axel 1)") × | $(meets "$pf" "$(med "$tag" axel 1)") |"
    rss_row "$tag" partfetch
    echo
    echo "TCP connections per run (distinct nginx connections, by user agent): $conns."
  } >"$WORK/table-$tag"
}

if [[ " $CASES " == *" 1 "* ]]; then
  note "case 1: one server, 20 MiB/s per connection (tc htb per client port)"
  cap_per_connection 1 20
  case_1 1 ""
  {
    report "" "### Case 1: one server, each connection capped at 20 MiB/s (tc htb), ${SIZE_MIB} MiB, 8 connections" ""
    report "Ideal: ${SIZE_MIB} MiB / (8 × 20 MiB/s). The cap is tc htb on the server's veth, one class per low byte of the client's port, so it holds per TCP connection whatever the requests on it."
    report "" "$(cat "$WORK/table-1")"
  }
fi

if [[ " $CASES " == *" 1b "* ]]; then
  note "case 1b: one server, nginx limit_rate 20m"
  cap_none 1
  case_1 1b "limit_rate 20m;"
  {
    report "" "### Case 1b: the same with nginx \`limit_rate 20m;\` as the cap, ${SIZE_MIB} MiB, 8 connections" ""
    report "nginx's limit_rate is per request and allows rate × (seconds since the request began + 1) bytes, so a request for 1 MiB is never slowed: a client of short ranged requests is not capped at all. Shown for comparison, not as a fair cap."
    report "" "$(cat "$WORK/table-1b")"
  }
fi

if [[ " $CASES " == *" 1c "* ]]; then
  note "case 1c: one server, 20 MiB/s per connection, each answer 25 ms after its request"
  cap_per_connection 1 20
  mkdir -p "$WORK/h1c"
  ln -f "$WORK/www/data.bin" "$WORK/h1c/data.bin"
  ns_serve 1 "$WORK/h1c" 25
  url=http://$(addr_of 1):$PORT/data.bin
  CMD_partfetch=("$BIN" -q -n 8 "$url" "$DEST")
  # shellcheck disable=SC2207
  CMD_aria2c=($(aria_cmd) -x8 -s8 -k1M "$url")
  CMD_axel=(axel -q -n 8 -o "$DEST" "$url")
  LOADS+=("case 1c: $(load_now)")
  set_labels
  compare 1c "$WORK/www/data.bin" "${LABELS[@]}"
  stop_serve
  cap_none 1
  ideal=$(awk -v s="$SIZE_MIB" 'BEGIN { printf "%.3f", s / (8 * 20) }')
  pf=$(med 1c partfetch 1)
  report "" "### Case 1c: each connection capped at 20 MiB/s, each answer 25 ms after its request, ${SIZE_MIB} MiB, 8 connections" ""
  report "Ideal: ${SIZE_MIB} MiB / (8 × 20 MiB/s), with no time for requests. The server is \`partfetch serve --delay 25\` (HTTP/1.1, keep-alive, Range), with the per-connection cap of case 1: a request costs a round trip of 25 ms, as on a distant link."
  report "" "$(table_head ideal)" "$(rows 1c "$ideal" "${LABELS[@]}")" ""
  report "| target | measured | met |" "| --- | --- | --- |"
  report "| partfetch ≤ aria2c | $(ratio "$pf" "$(med 1c aria2c 1)") × | $(meets "$pf" "$(med 1c aria2c 1)") |"
  report "| partfetch ≤ axel | $(ratio "$pf" "$(med 1c axel 1)") × | $(meets "$pf" "$(med 1c axel 1)") |"
  report "$(rss_row 1c partfetch)"
fi

# ---------------------------------------------------------------- case 2

if [[ " $CASES " == *" 2 "* ]]; then
  note "case 2: mirrors at 40, 40, 40, 4 MiB/s, one dead, one 503"
  rates=(0 40 40 40 4)
  urls=()
  for k in 1 2 3 4; do
    cap_host "$k" "${rates[$k]}"
    servers=$(ns_server "$k" "$PORT" "$WORK/www")
    if [ "$k" = 1 ]; then
      servers+=$'\n'$(ns_server 1 "$E503_PORT" "$WORK/www" "return 503;")
    fi
    ns_nginx "$k" c2 "$servers"
    urls+=("http://$(addr_of "$k"):$PORT/data.bin")
  done
  urls+=("http://$(addr_of 2):$DEAD_PORT/data.bin" "http://$(addr_of 1):$E503_PORT/data.bin")
  mirror_args=()
  for u in "${urls[@]:1}"; do mirror_args+=(--mirror "$u"); done
  CMD_partfetch=("$BIN" -q -n 8 "${urls[0]}" "${mirror_args[@]}" "$DEST")
  # shellcheck disable=SC2207
  CMD_aria2c=($(aria_cmd) -x8 -s8 -k1M "${urls[@]}")
  # axel 2.17 is killed by SIGPIPE at once when a URL among several refuses
  # the connection: it gets the four live mirrors only.
  CMD_axel=(axel -q -n 8 -o "$DEST" "${urls[@]:0:4}")
  LOADS+=("case 2: $(load_now)")
  share=$(payload_share "${urls[0]}" 40 $((32 << 20)))
  set_labels
  compare 2 "$WORK/www/data.bin" "${LABELS[@]}"
  # Bytes each mirror sent to each tool over all runs, from the access logs.
  served=""
  for k in 1 2 3 4; do
    served+="host $k (${rates[$k]} MiB/s): $(awk -F'"' '{ split($1, f, " "); ua = $4; sub("/.*", "", ua); b[ua] += f[5] }
      END { for (u in b) printf "%s %.0f MiB, ", u, b[u] / 1048576 }' "$WORK/ngx-c2-$k/access.log" | sed 's/, $//'); "
  done
  e503=$(grep -c "^[0-9]* [0-9]* $E503_PORT 503" "$WORK/ngx-c2-1/access.log" || true)
  stop_nginx c2
  for k in 1 2 3 4; do cap_none "$k"; done
  ideal=$(awk -v s="$SIZE_MIB" 'BEGIN { printf "%.3f", s / 124 }')
  payload_ideal=$(awk -v i="$ideal" -v f="$share" 'BEGIN { printf "%.3f", i / f }')
  pf=$(med 2 partfetch 1)
  aria=$(med 2 aria2c 1)
  report "" "### Case 2: four mirrors at 40, 40, 40 and 4 MiB/s (tc tbf per host), a dead one and a 503 one, ${SIZE_MIB} MiB" ""
  report "Ideal: ${SIZE_MIB} MiB / 124 MiB/s. URLs in order: hosts 1–4, a port with no listener on host 2, a server answering 503 on host 1. axel gets the four live mirrors only: axel 2.17 is killed by SIGPIPE before any transfer when one of several URLs refuses the connection."
  report "" "$(table_head ideal)" "$(rows 2 "$ideal" "${LABELS[@]}")" ""
  report "| target | measured | met |" "| --- | --- | --- |"
  report "| partfetch ≤ 1.05 × ideal ($ideal s) | $pf s ($(ratio "$pf" "$ideal") ×) | $(meets "$pf" "$(times "$ideal" 1.05)") |"
  report "| partfetch ≤ 0.9 × aria2c | $(ratio "$pf" "$aria") × | $(meets "$(ratio "$pf" "$aria")" 0.9) |"
  report "| (for reference) partfetch, aria2c / payload ideal ($payload_ideal s: one stream gets $share of a host's cap for the file's bytes) | $(ratio "$pf" "$payload_ideal") ×, $(ratio "$aria" "$payload_ideal") × | |"
  report "$(rss_row 2 partfetch)" ""
  report "MiB served per host over all runs, by user agent: $served 503 answers: $e503 (all tools, all runs)."
fi

# ---------------------------------------------------------------- case 3

if [[ " $CASES " == *" 3 "* ]]; then
  note "case 3: $PARTS parts of 64 KiB over three hosts answering after 25 ms"
  head -c $((PARTS * 64 * 1024)) "$WORK/www/big.bin" >"$WORK/parts-src.bin" 2>/dev/null || true
  if [ "$(stat -c %s "$WORK/parts-src.bin")" -lt $((PARTS * 64 * 1024)) ]; then
    head -c $((PARTS * 64 * 1024)) /dev/urandom >"$WORK/parts-src.bin"
  fi
  dirs=() bases=()
  for k in 1 2 3; do
    dirs+=("$WORK/h$k")
    bases+=("http://$(addr_of "$k"):$PORT/")
  done
  "$BIN" split "$WORK/parts-src.bin" --part-size 64K --to "${dirs[@]}" --base-url "${bases[@]}" >/dev/null
  for k in 1 2 3; do
    ns_serve "$k" "$WORK/h$k" 25
  done
  manifest=${bases[0]}parts-src.bin.parts
  grep '^http' "$WORK/h1/parts-src.bin.parts" | awk -v d="$OUT/aria" '{ printf "%s\n  dir=%s\n  out=%d\n", $0, d, NR }' >"$WORK/aria.list"
  [ "$(grep -c '^http' "$WORK/aria.list")" = "$PARTS" ] || die "the manifest does not list $PARTS parts"
  CMD_window=("$BIN" -q "$manifest" "$DEST")
  CMD_sequential=("$BIN" -q -j 1 "$manifest" "$DEST")
  CMD_aria2c=(aria2c -q --file-allocation=none --allow-overwrite=true --auto-file-renaming=false -j 8 -i "$WORK/aria.list")
  LOADS+=("case 3: $(load_now)")
  compare 3 "$WORK/parts-src.bin" window sequential
  # aria2c writes one file per part; checked by count, then removed.
  : >"$WORK/3-aria2c"
  CMDLINE[3-aria2c]="aria2c -q --file-allocation=none --allow-overwrite=true --auto-file-renaming=false -j 8 -i LIST"
  for run in $(seq "$RUNS"); do
    rm -rf "$OUT/aria"
    timed 3 aria2c "" "${CMD_aria2c[@]}"
    got=$(find "$OUT/aria" -type f | wc -l)
    [ "$got" = "$PARTS" ] || die "aria2c wrote $got files, not $PARTS"
  done
  rm -rf "$OUT/aria"
  stop_serve
  seq_wall=$(med 3 sequential 1)
  win_wall=$(med 3 window 1)
  speedup=$(ratio "$seq_wall" "$win_wall")
  report "" "### Case 3: a manifest of $PARTS parts of 64 KiB alternating over three hosts, each answering after 25 ms" ""
  report "Servers: \`partfetch serve DIR --delay 25\` in each namespace; manifest from \`partfetch split --part-size 64K\` (one part per host in turn, with size and sha256). aria2c fetches the same $PARTS URLs as $PARTS files, a reference only."
  report "" "$(table_head "sequential")" "$(rows 3 "$seq_wall" window sequential aria2c)" ""
  report "| target | measured | met |" "| --- | --- | --- |"
  report "| default window ≥ 8 × faster than \`-j 1\` | $speedup × | $(meets 8 "$speedup") |"
  report "$(rss_row 3 window)" "$(rss_row 3 sequential)"
fi

# ---------------------------------------------------------------- case 4

if [[ " $CASES " == *" 4 "* ]]; then
  note "case 4: one uncapped server, ${BIG_MIB} MiB"
  ns_nginx 1 c4 "$(ns_server 1 "$PORT" "$WORK/www")"
  url=http://$(addr_of 1):$PORT/big.bin
  CMD_default=("$BIN" -q "$url" "$DEST")
  CMD_single=("$BIN" -q -n 1 "$url" "$DEST")
  # shellcheck disable=SC2207
  CMD_aria2c=($(aria_cmd) -x4 -s4 -k1M "$url")
  CMD_axel=(axel -q -n 4 -o "$DEST" "$url")
  LOADS+=("case 4: $(load_now)")
  compare 4 "$WORK/www/big.bin" default single aria2c axel
  stop_nginx c4
  single=$(med 4 single 1)
  def=$(med 4 default 1)
  report "" "### Case 4: one uncapped server (nginx in a namespace), ${BIG_MIB} MiB" ""
  report "$(table_head "\`-n 1\`")" "$(rows 4 "$single" default single aria2c axel)" ""
  report "| target | measured | met |" "| --- | --- | --- |"
  report "| default (\`-n 4\`) ≤ 1.05 × \`-n 1\` | $(ratio "$def" "$single") × | $(meets "$def" "$(times "$single" 1.05)") |"
  report "$(rss_row 4 default)" "$(rss_row 4 single)"
fi

# ---------------------------------------------------------------- report

COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mode="full"
[ "$QUICK" = 1 ] && mode="quick"
cat <<EOF

## Test bed: mirrors in network namespaces (\`bench/testbed.sh\`, $mode)

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL), $(uname -sr). partfetch $COMMIT;
$(aria2c --version | head -n 1); $(axel --version | head -n 1); nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||') (1 worker per host, sendfile on).
Each host is a network namespace joined to the root namespace by a veth pair;
caps are tc qdiscs on the host's side (this kernel has no netem: no added
latency except the servers' own delay in case 3). Every tool writes to a
file in a tmpfs, checked after each run (bytes compared on the first run).
Medians of $RUNS run(s), rotating which tool goes first. Wall and CPU
(user + sys) in seconds and peak RSS from \`/usr/bin/time\`.
Load average (1, 5, 15 min) when each case began: $(printf '%s; ' "${LOADS[@]}" | sed 's/; $//').
EOF
cat "$REPORT"
