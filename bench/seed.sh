#!/usr/bin/env bash
# partfetch as a BitTorrent seeder against aria2c, libtorrent and
# Transmission as seeders, on the swarm test bed (tests/swarm/bed.sh). The
# same torrent (256 MiB of random data in 1 MiB pieces, mktorrent -l 20)
# is seeded by one seeder at a time, and downloaded by a leecher of the
# fastest kind measured here (libtorrent), then by Transmission, timed by
# bed.sh wait-complete (from when the leecher was given the torrent to
# when it verified its last piece). Then partfetch seeds to 8 libtorrent
# leechers at once, for its peak RSS. Prints Markdown for BENCHMARKS.md.
# Run as root (namespaces, a bridge).
#
#   bench/seed.sh                    # 256 MiB, 3 runs of each pair
#   RUNS=5 bench/seed.sh             # more runs
#   bench/seed.sh --quick            # 32 MiB, 1 run: checks that it works
#   PARTFETCH=path bench/seed.sh     # that binary (default: target/release/partfetch, built first)
#   ROWS=libtorrent bench/seed.sh    # only some tables (libtorrent, transmission, memory)
#
# Each leecher run gets a fresh namespace and address and a fresh output
# directory in a tmpfs, and its file is compared with the seeded one. A
# run that fails or differs is reported and not timed.
#
# Owns: the bed (up/down, its data in a work directory under /tmp), the
# seeders it starts, output directories under /dev/shm. All of it is
# removed on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,24s/^# \{0,1\}//p' "$0"
}

QUICK=0
RUNS=${RUNS:-3}
ROWS=${ROWS:-libtorrent transmission memory}
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then SIZE_MIB=32; else SIZE_MIB=256; fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive
BED=$REPO/tests/swarm/bed.sh
LT_PYTHON=/usr/bin/python3

[ "$(id -u)" = 0 ] || die "run as root: network namespaces and a bridge need it"
need_tools ip cmp aria2c mktorrent opentracker transmission-daemon transmission-remote curl
"$LT_PYTHON" -c 'import libtorrent' 2>/dev/null ||
  die "$LT_PYTHON cannot import libtorrent (apt-get install python3-libtorrent)"
if ip link show pfsw-br >/dev/null 2>&1; then
  die "a swarm bed is up already: another run, or a killed one: bash tests/swarm/bed.sh down"
fi

if [ -z "${PARTFETCH:-}" ]; then
  build_release
  PARTFETCH=$BIN
fi

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
# The commit of the source, read now: it may change while the runs go on.
COMMIT=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
bench_workdir
OUT_ROOT=$(mktemp -d /dev/shm/partfetch-seed.XXXXXX)
BED_UP=0
SEEDER_PID=""
SEEDER_NS=""
seed_cleanup() {
  stop_seeder
  if [ "$BED_UP" = 1 ]; then
    bash "$BED" down "$WORK/bed" >/dev/null 2>&1 || true
  fi
  rm -rf -- "$OUT_ROOT"
  bench_cleanup
}
trap seed_cleanup EXIT
cp "$PARTFETCH" "$WORK/partfetch"
PARTFETCH=$WORK/partfetch

note "bringing the bed up: ${SIZE_MIB} MiB, no seeder"
BED_UP=1
BED_ENV=$(BED_SIZE_MIB=$SIZE_MIB BED_SMALL_MIB=0 bash "$BED" up "$WORK/bed" none)
TORRENT=$(sed -n 's/^SINGLE_TORRENT=//p' <<<"$BED_ENV")
DATA=$(sed -n 's/^SINGLE_DATA=//p' <<<"$BED_ENV")
NAME=$(sed -n 's/^SINGLE_NAME=//p' <<<"$BED_ENV")

# ---------------------------------------------------------------- seeders

# libtorrent as a seeder of TORRENT with its data in DIR: the leecher's
# settings, the data taken as complete (seed_mode), until killed.
cat >"$WORK/lt-seed.py" <<'PY'
import sys, time
import libtorrent as lt
torrent, data = sys.argv[1:3]
session = lt.session({
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.disabled,
    "listen_interfaces": "0.0.0.0:6881",
})
session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": data,
                     "flags": lt.torrent_flags.seed_mode})
while True:
    time.sleep(1)
PY

# Starts seeder KIND (partfetch, aria2, libtorrent, transmission) alone.
start_seeder() {
  local kind=$1 lines
  case $kind in
    aria2 | transmission) bash "$BED" seeders "$WORK/bed" "$kind" >/dev/null; return ;;
  esac
  bash "$BED" seeders "$WORK/bed" none >/dev/null
  lines=$(bash "$BED" seeder-ns "$WORK/bed")
  SEEDER_NS=$(sed -n 's/^SEEDER_NS=//p' <<<"$lines")
  local addr
  addr=$(sed -n 's/^SEEDER_ADDR=//p' <<<"$lines")
  case $kind in
    partfetch)
      ip netns exec "$SEEDER_NS" /usr/bin/time -f '%M' -o "$WORK/seeder-rss" \
        "$PARTFETCH" seed "$TORRENT" "$(dirname "$DATA")" -q \
        </dev/null >/dev/null 2>"$WORK/seeder.log" &
      ;;
    libtorrent)
      ip netns exec "$SEEDER_NS" "$LT_PYTHON" "$WORK/lt-seed.py" "$TORRENT" "$(dirname "$DATA")" \
        </dev/null >/dev/null 2>"$WORK/seeder.log" &
      ;;
  esac
  SEEDER_PID=$!
  bash "$BED" wait-listed "$WORK/bed" "$TORRENT" "$addr" >/dev/null
}

# Stops the seeder start_seeder started itself: Ctrl-C (partfetch then
# announces `stopped`), then its namespace.
stop_seeder() {
  if [ -n "$SEEDER_PID" ]; then
    # partfetch (GNU time's child) on Ctrl-C; libtorrent, which does not
    # end on it, on SIGTERM.
    pkill -INT -P "$SEEDER_PID" 2>/dev/null || kill "$SEEDER_PID" 2>/dev/null || true
    wait "$SEEDER_PID" 2>/dev/null || true
    SEEDER_PID=""
  fi
  if [ -n "$SEEDER_NS" ]; then
    bash "$BED" leecher-del "$WORK/bed" "$SEEDER_NS" >/dev/null 2>&1 || true
    SEEDER_NS=""
  fi
}

# One leecher of KIND from the running seeder; appends its seconds to
# $WORK/TABLE-SEEDER, or a line to $WORK/TABLE-SEEDER.fail.
#   leech TABLE SEEDER KIND
leech() {
  local table=$1 seeder=$2 kind=$3 dir lines ns why="" seconds=""
  dir=$(mktemp -d "$OUT_ROOT/$kind.XXXXXX")
  lines=$(bash "$BED" leech "$WORK/bed" "$kind" "$TORRENT" "$dir" stop)
  ns=$(sed -n 's/^LEECH_NS=//p' <<<"$lines")
  if lines=$(bash "$BED" wait-complete "$WORK/bed" "$ns" 2>&1); then
    seconds=$(sed -n 's/^LEECH_SECONDS=//p' <<<"$lines")
    cmp -s "$dir/$NAME" "$DATA" || why="output differs from the seeded file"
  else
    why=$(tail -n 1 <<<"$lines")
  fi
  bash "$BED" leecher-del "$WORK/bed" "$ns" >/dev/null
  rm -rf -- "$dir"
  if [ -n "$why" ]; then
    echo "$why" >>"$WORK/$table-$seeder.fail"
    note "$table from $seeder: FAILED: $why"
  else
    echo "$seconds" >>"$WORK/$table-$seeder"
    note "$table from $seeder: $seconds s"
  fi
}

ok_runs() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# A table: leecher KIND from each of SEEDERS, RUNS rounds, rotating which
# seeder goes first.
#   table KIND SEEDERS...
table() {
  local kind=$1 seeders n best
  shift
  seeders=("$@")
  n=${#seeders[@]}
  for run in $(seq "$RUNS"); do
    for i in $(seq 0 $((n - 1))); do
      local seeder=${seeders[$(((i + run - 1) % n))]}
      start_seeder "$seeder"
      leech "$kind" "$seeder" "$kind"
      stop_seeder
    done
  done
  echo
  echo "### A $kind leecher; ${SIZE_MIB} MiB, 1 MiB pieces, one seeder at a time"
  echo
  echo "| seeder | runs ok | leecher's time (s), median | runs (s) | / fastest other seeder |"
  echo "| --- | ---: | ---: | --- | ---: |"
  for seeder in "${seeders[@]}"; do
    local file=$WORK/$kind-$seeder ok
    ok=$(ok_runs "$file")
    if [ "$ok" = 0 ]; then
      echo "| $seeder | 0/$RUNS | failed: $(sort -u "$file.fail" | paste -sd ';' -) | | |"
      continue
    fi
    best=""
    for other in "${seeders[@]}"; do
      [ "$other" = "$seeder" ] && continue
      [ "$(ok_runs "$WORK/$kind-$other")" = 0 ] && continue
      local w
      w=$(median "$WORK/$kind-$other" 1)
      if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$w; fi
    done
    local wall
    wall=$(median "$file" 1)
    echo "| $seeder | $ok/$RUNS | $wall | $(paste -sd ' ' "$file") | $(if [ -n "$best" ]; then ratio "$wall" "$best"; else echo n/a; fi) |"
  done
}

# partfetch seeding to 8 libtorrent leechers at once: its peak RSS.
memory() {
  local dirs=() nss=() lines ns
  start_seeder partfetch
  for _ in 1 2 3 4 5 6 7 8; do
    local dir
    dir=$(mktemp -d "$OUT_ROOT/lt8.XXXXXX")
    lines=$(bash "$BED" leech "$WORK/bed" libtorrent "$TORRENT" "$dir" stop)
    ns=$(sed -n 's/^LEECH_NS=//p' <<<"$lines")
    dirs+=("$dir")
    nss+=("$ns")
  done
  lines=$(bash "$BED" wait-complete "$WORK/bed" "${nss[@]}")
  local slowest ok=0
  slowest=$(sed -n 's/^LEECH_SECONDS=//p' <<<"$lines" | sort -g | tail -n 1)
  for dir in "${dirs[@]}"; do cmp -s "$dir/$NAME" "$DATA" && ok=$((ok + 1)); done
  for ns in "${nss[@]}"; do bash "$BED" leecher-del "$WORK/bed" "$ns" >/dev/null; done
  stop_seeder
  local rss
  rss=$(tail -n 1 "$WORK/seeder-rss")
  echo
  echo "### partfetch seeding to 8 libtorrent leechers at once; ${SIZE_MIB} MiB"
  echo
  echo "| leechers complete and equal | slowest leecher (s) | partfetch seed's peak RSS (MiB) |"
  echo "| ---: | ---: | ---: |"
  echo "| $ok/8 | $slowest | $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') |"
}

REPORT=$WORK/report.md
: >"$REPORT"
for row in $ROWS; do
  case $row in
    libtorrent) table libtorrent partfetch aria2 libtorrent >>"$REPORT" ;;
    transmission) table transmission partfetch transmission >>"$REPORT" ;;
    memory) memory >>"$REPORT" ;;
    *) die "unknown row '$row' (libtorrent, transmission, memory)" ;;
  esac
done

mode="full"
[ "$QUICK" = 1 ] && mode="quick"
cat <<EOF

## BitTorrent seeders on the swarm bed (\`bench/seed.sh\`, $mode)

$(date -u +%Y-%m-%d), $(nproc) cores, load before the run $LOAD. partfetch $COMMIT
(\`partfetch seed\`); $(aria2c --version | head -n 1); $(transmission-daemon --version 2>&1 | head -n 1);
libtorrent $("$LT_PYTHON" -c 'import libtorrent; print(libtorrent.__version__)').
One seeder at a time, in a namespace of the bed; each leecher on a fresh
address, µTP, encryption, DHT, LPD and PEX off, writing to a tmpfs and
compared with the seeded file. The leecher's time is bed.sh's: from when
it was given the torrent to when it had verified every piece (a
Transmission leecher waits 10-15 s before its first request, whoever
seeds). Medians of $RUNS run(s), rotating which seeder goes first.
EOF
cat "$REPORT"
