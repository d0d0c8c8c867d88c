#!/usr/bin/env bash
# A BitTorrent swarm on this machine, for tests/swarm.rs and bench/swarm.sh:
# a Linux bridge with network namespaces on it for an opentracker tracker,
# an aria2c seeder and a Transmission seeder, a fresh namespace with a
# fresh address for each leecher or seeder run, and aria2c, Transmission
# and libtorrent leechers of any torrent (for a seeder under test). Run as
# root.
#
#   bed.sh up WORKDIR [SEEDERS]     # network, tracker, data, torrents, seeders
#   bed.sh seeders WORKDIR SEEDERS  # starts/stops seeders until exactly these run
#   bed.sh leecher-ns WORKDIR       # a new namespace, new address, for one run
#   bed.sh seeder-ns WORKDIR        # the same, for a seeder the caller starts
#   bed.sh leecher-del WORKDIR NS   # ends its processes, forgets it, removes it
#                                   # (any NS of leecher-ns, seeder-ns or leech)
#   bed.sh uploaded WORKDIR WHICH   # bytes each seeder has sent of WHICH's torrent
#   bed.sh torrent WORKDIR TORRENT  # lets the tracker serve a .torrent of the caller's
#   bed.sh wait-listed WORKDIR TORRENT ADDR  # until the tracker lists ADDR for it
#   bed.sh leech WORKDIR KIND TORRENT OUTDIR [MODE]  # a leecher in a new namespace
#   bed.sh wait-complete WORKDIR NS...  # until each has every piece; its time
#   bed.sh leech-status WORKDIR NS  # what it has, what it uploaded
#   bed.sh env WORKDIR              # prints the lines `up` printed
#   bed.sh down [WORKDIR]           # removes it all; idempotent
#
# SEEDERS: both (the default), aria2, transmission or none. WHICH: single,
# small or multi. A leecher runs with `ip netns exec NS COMMAND...`, or in
# the root namespace (10.78.0.1, once per bed: see below); so does a seeder
# of the caller's (partfetch), in a namespace of `seeder-ns`.
#
# `up` prints NAME=VALUE lines (also in WORKDIR/bed.env): BED_DIR, TRACKER
# (the announce URL), ROOT_ADDR, TRACKER_ADDR, ARIA2_ADDR,
# TRANSMISSION_ADDR, then for X in SINGLE, SMALL, MULTI: X_TORRENT, X_DATA
# (the file or directory the torrent was made of), X_NAME (its name in
# the torrent, so a leecher told to save in DIR writes DIR/X_NAME) and
# X_HASH; last SEEDERS (aria2,transmission / aria2 / transmission / none).
# `seeders` prints SEEDERS=...; `leecher-ns` prints LEECHER_NS=...,
# LEECHER_ADDR=...; `seeder-ns` SEEDER_NS=..., SEEDER_ADDR=...; `uploaded`
# prints ARIA2_UPLOADED=BYTES and TRANSMISSION_UPLOADED=BYTES (0 for a
# seeder not running); `torrent` TORRENT_HASH=....
#
# Other torrents: the tracker serves only the bed's, until `torrent` (or
# `leech`, or `wait-listed`) lets another in; it must name TRACKER as its
# announce URL (`mktorrent -a TRACKER`, or any tool). `wait-listed` returns
# once the tracker lists ADDR (a seeder of the caller's) for TORRENT: a
# leecher started earlier may wait for its next announce to hear of it.
#
# `leech` starts KIND, aria2 (aria2c), transmission (transmission-daemon)
# or libtorrent (python3-libtorrent, from /usr/bin/python3), as a leecher
# of TORRENT saving in OUTDIR, in a new namespace, and returns at once;
# it prints LEECH_NS=..., LEECH_ADDR=..., LEECH_PID=.... DHT, LPD, PEX,
# µTP and encryption off, as the seeders. MODE seed (the default): once
# complete it seeds on until `leecher-del` (or `down`), so its uploads can
# be counted; stop: it stops sharing the torrent once complete (aria2c
# --seed-time=0, Transmission a seed ratio of 0; both stay up until
# `leecher-del`, libtorrent exits).
# `wait-complete` waits (BED_TIMEOUT seconds for each) until each leecher
# NS has every piece, verified by the client, then prints per leecher
# LEECH_NS, LEECH_SECONDS (from when the client was given the torrent —
# the start of aria2c or libtorrent, Transmission's `add` — to when it
# completed: libtorrent's own time, else when it was first seen complete,
# polled every 0.05 s), LEECH_DOWNLOADED and LEECH_UPLOADED (bytes, as
# last seen); a leecher that fails or exits first ends the wait with its
# log. `leech-status` prints LEECH_STATE (running, done, failed or
# exited), LEECH_DOWNLOADED, LEECH_UPLOADED (bytes it sent to peers) and
# LEECH_WHY for a failure. `leecher-del NS` ends it and removes its
# namespace. A Transmission leecher gets its first byte 10-15 s after it
# starts (it turns interested at its 10 s rechoke), whoever seeds.
#
# SINGLE is one file of random data, BED_SIZE_MIB MiB (default 256); SMALL
# the same with BED_SMALL_MIB (default 16; 0: no SMALL torrent); MULTI a
# directory of files of 1, 1048577, 3000001, 0 and 777777 bytes, two of
# them in a subdirectory and one in a subdirectory of that. Torrents:
# `mktorrent -l 20` (1 MiB pieces). WORKDIR keeps them: a later `up` on the
# same WORKDIR and sizes reuses them. Each seeder seeds every torrent.
# `up` and `seeders` return once each seeder that should run has verified
# its data and seeds every torrent, and the tracker lists its address for
# every torrent; a stopped seeder's address leaves the tracker's list.
# Every wait is bounded: BED_TIMEOUT seconds (default 60), then a message.
#
# Transmission refuses to dial 127.x addresses and keys peers by address:
# a leecher on the address of one that finished is taken for the seed that
# one became. So each leecher run gets its own namespace and address, and
# `leecher-del` announces `stopped` to the tracker for whatever the leecher
# left there, so that later runs are not sent to an address that is gone.
#
# Owns: the bridge pfsw-br (10.78.0.1/16; its alias names WORKDIR), the
# namespaces pfsw-trk (10.78.0.2), pfsw-aria (10.78.0.3), pfsw-tr
# (10.78.0.4) and pfsw-lN (10.78.1.2 upwards, for leechers and seeders of
# runs), their veth pairs (pfsw-*), every process inside them, and
# WORKDIR's contents (data, torrents, run/: logs, pids, configs, and
# run/leech/NS/ for each `leech`). Not OUTDIR: the caller's. Only one bed
# exists at a time: the names are fixed. Nothing routes out of the
# machine: every address is on the bridge.
set -euo pipefail

usage() {
  # The header: from line 2 to the first line that is no comment.
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
}

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
BR=pfsw-br
ROOT_ADDR=10.78.0.1
TRACKER_ADDR=10.78.0.2
ARIA2_ADDR=10.78.0.3
TRANSMISSION_ADDR=10.78.0.4
TRACKER_PORT=6969
TRACKER=http://$TRACKER_ADDR:$TRACKER_PORT/announce
NS_TRACKER=pfsw-trk
NS_ARIA2=pfsw-aria
NS_TRANSMISSION=pfsw-tr
ARIA2_RPC=http://127.0.0.1:6800/jsonrpc
TRANSMISSION_RPC=127.0.0.1:9091
BED_SIZE_MIB=${BED_SIZE_MIB:-256}
BED_SMALL_MIB=${BED_SMALL_MIB:-16}
BED_TIMEOUT=${BED_TIMEOUT:-60}
WAIT_STEP=0.2
# Sizes of MULTI's files, by path under its directory.
MULTI_FILES=("one.bin:1" "a.bin:1048577" "sub/b.bin:3000001" "sub/empty.bin:0"
  "sub/deeper/c.bin:777777")

die() {
  echo "bed.sh: error: $*" >&2
  exit 1
}

note() {
  echo "bed.sh: $*" >&2
}

for size in "$BED_SIZE_MIB" "$BED_SMALL_MIB" "$BED_TIMEOUT"; do
  case $size in
    '' | *[!0-9]*) die "BED_SIZE_MIB, BED_SMALL_MIB and BED_TIMEOUT must be whole numbers" ;;
  esac
done
[ "$BED_SIZE_MIB" -gt 0 ] || die "BED_SIZE_MIB must be at least 1"
# Ctrl-C and TERM leave through the EXIT trap (which `up` sets).
trap 'exit 130' INT
trap 'exit 143' TERM

# No proxy from the environment may come between us and the bed.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# ---------------------------------------------------------------- helpers

# Runs COMMAND every WAIT_STEP seconds (0.2) until it succeeds, or dies
# after BED_TIMEOUT seconds saying WHAT was awaited (and HINT, a file to
# show, if any).
#   wait_for WHAT HINT COMMAND...
wait_for() {
  local what=$1 hint=$2 deadline=$((SECONDS + BED_TIMEOUT))
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ -n "$hint" ] && [ -f "$hint" ] && tail -n 20 "$hint" | sed 's/^/    /' >&2
      die "timed out after ${BED_TIMEOUT}s waiting for $what"
    fi
    sleep "$WAIT_STEP"
  done
}

# Succeeds while process PID runs. A zombie does not count: the daemons
# started here are orphans, and whatever adopts them may never reap them.
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Sends TERM to PID and waits up to GRACE seconds, then KILL.
#   stop_pid PID GRACE
stop_pid() {
  local pid=$1 grace=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((grace * 10))); do
    alive "$pid" || return 0
    sleep 0.1
  done
  note "pid $pid still running ${grace}s after TERM: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# Ends every process in namespace NS (TERM, then KILL after 5 s).
kill_ns_pids() {
  local ns=$1 pid
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# Makes namespace NS with address ADDR on the bridge (veth NS-h there,
# pfsw0 inside).
add_ns() {
  local ns=$1 addr=$2
  ip netns add "$ns"
  ip link add "$ns-h" type veth peer name pfsw0 netns "$ns"
  ip link set "$ns-h" master "$BR" up
  ip -n "$ns" addr add "$addr/16" dev pfsw0
  ip -n "$ns" link set pfsw0 up
  ip -n "$ns" link set lo up
}

del_ns() {
  local ns=$1
  kill_ns_pids "$ns"
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$ns-h" 2>/dev/null || true
}

# Starts COMMAND in namespace NS as a daemon of its own (its own session,
# standard streams on LOG and /dev/null, so that no caller's pipe stays
# open), and writes its pid to PIDFILE.
#   spawn NS LOG PIDFILE COMMAND...
spawn() {
  local ns=$1 log=$2 pidfile=$3
  shift 3
  # Without job control a background job is no process group leader, so
  # setsid execs in place and $! is the daemon itself (ip netns exec execs too).
  setsid ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$pidfile"
}

# The pid in PIDFILE if that process is alive, else nothing (and failure).
live_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && alive "$pid" && echo "$pid"
}

# ---------------------------------------------------------------- workdir

# Sets the paths under WORKDIR (made absolute), creating it if asked.
#   set_workdir WORKDIR [create]
set_workdir() {
  [ -n "${1:-}" ] || { usage >&2; exit 2; }
  if [ "${2:-}" = create ]; then
    mkdir -p "$1"
  fi
  [ -d "$1" ] || die "no such directory: $1"
  W=$(cd "$1" && pwd)
  DATA=$W/data
  RUN=$W/run
  SINGLE_TORRENT=$W/single.torrent SINGLE_NAME=single.bin
  SMALL_TORRENT=$W/small.torrent SMALL_NAME=small.bin
  MULTI_TORRENT=$W/multi.torrent MULTI_NAME=multi
}

# The torrents this bed has (SMALL only with BED_SMALL_MIB > 0), as
# upper-case names.
torrents() {
  echo SINGLE
  if [ -f "$SMALL_TORRENT" ]; then echo SMALL; fi
  echo MULTI
}

# The info-hash of TORRENT (hex, lower case).
info_hash() {
  transmission-show "$1" | sed -n 's/^ *Hash\( v1\)\{0,1\}: *\([0-9a-f]\{40\}\)$/\2/p' | head -n 1
}

print_env() {
  [ -f "$W/bed.env" ] || die "$W has no bed (no bed.env): run bed.sh up $W"
  cat "$W/bed.env"
  echo "SEEDERS=$(running_seeders)"
}

# ---------------------------------------------------------------- data

# Writes FILE with BYTES random bytes unless it has that size already.
random_file() {
  local file=$1 bytes=$2
  if [ -f "$file" ] && [ "$(stat -c %s "$file")" = "$bytes" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  head -c "$bytes" /dev/urandom >"$file.tmp"
  mv "$file.tmp" "$file"
}

# Makes TORRENT of PATH unless it exists and is newer than PATH's files.
make_torrent() {
  local torrent=$1 path=$2
  if [ -f "$torrent" ] && [ -z "$(find "$path" -newer "$torrent" -print -quit)" ]; then
    return 0
  fi
  rm -f "$torrent"
  mktorrent -l 20 -a "$TRACKER" -o "$torrent" "$path" >/dev/null ||
    die "mktorrent failed for $path"
}

make_data() {
  local entry
  mkdir -p "$DATA"
  random_file "$DATA/$SINGLE_NAME" $((BED_SIZE_MIB << 20))
  make_torrent "$SINGLE_TORRENT" "$DATA/$SINGLE_NAME"
  if [ "$BED_SMALL_MIB" -gt 0 ]; then
    random_file "$DATA/$SMALL_NAME" $((BED_SMALL_MIB << 20))
    make_torrent "$SMALL_TORRENT" "$DATA/$SMALL_NAME"
  else
    rm -f "$SMALL_TORRENT" "$DATA/$SMALL_NAME"
  fi
  for entry in "${MULTI_FILES[@]}"; do
    random_file "$DATA/$MULTI_NAME/${entry%%:*}" "${entry##*:}"
  done
  make_torrent "$MULTI_TORRENT" "$DATA/$MULTI_NAME"
}

write_env() {
  local t torrent hash
  {
    echo "BED_DIR=$W"
    echo "TRACKER=$TRACKER"
    echo "ROOT_ADDR=$ROOT_ADDR"
    echo "TRACKER_ADDR=$TRACKER_ADDR"
    echo "ARIA2_ADDR=$ARIA2_ADDR"
    echo "TRANSMISSION_ADDR=$TRANSMISSION_ADDR"
    for t in $(torrents); do
      local -n name="${t}_NAME"
      torrent="${t}_TORRENT"
      hash=$(info_hash "${!torrent}")
      [ -n "$hash" ] || die "transmission-show gave no info-hash for ${!torrent}"
      echo "${t}_TORRENT=${!torrent}"
      echo "${t}_DATA=$DATA/$name"
      echo "${t}_NAME=$name"
      echo "${t}_HASH=$hash"
    done
  } >"$W/bed.env"
}

# The info-hashes of the bed's torrents, one a line.
hashes() {
  sed -n 's/^[A-Z]*_HASH=//p' "$W/bed.env"
}

# The info-hashes of every torrent the tracker serves: the bed's, and those
# `torrent` and `leech` let in since `up`.
all_hashes() {
  hashes
  cat "$RUN/extra-hashes" 2>/dev/null || true
}

# The hash of torrent WHICH (single, small, multi).
hash_of() {
  local key
  key=$(echo "$1" | tr '[:lower:]' '[:upper:]')_HASH
  sed -n "s/^$key=//p" "$W/bed.env" | grep . || die "no torrent '$1' in this bed"
}

# ---------------------------------------------------------------- tracker

start_tracker() {
  local dir=$RUN/tracker
  mkdir -p "$dir"
  hashes >"$dir/whitelist.txt"
  # opentracker drops to nobody and chroots into its directory, then reads
  # the whitelist (and reads it again on HUP).
  chmod 755 "$dir"
  chmod 644 "$dir/whitelist.txt"
  spawn "$NS_TRACKER" "$RUN/tracker.log" "$RUN/tracker.pid" \
    opentracker -i "$TRACKER_ADDR" -p "$TRACKER_PORT" -P "$TRACKER_PORT" \
    -d "$dir" -u nobody -w whitelist.txt
  wait_for "opentracker to answer on $TRACKER_ADDR:$TRACKER_PORT" "$RUN/tracker.log" \
    tracker_answers
}

tracker_answers() {
  live_pid "$RUN/tracker.pid" >/dev/null ||
    { tail -n 5 "$RUN/tracker.log" >&2; die "opentracker exited"; }
  local hash
  for hash in $(hashes); do
    tracker peers "$hash" >/dev/null 2>&1 || return 1
  done
}

# Talks to the tracker, from whatever namespace it runs in:
#   tracker peers HASH        prints the ip:port of each peer it lists
#   tracker stop HASH PORT    announces `stopped` for this address and PORT
# `peers` announces a leecher on port 1 of this address, reads the list,
# and announces it stopped.
tracker() {
  python3 - "$TRACKER" "$@" <<'EOF'
import sys, urllib.parse, urllib.request
url, what, info_hash = sys.argv[1:4]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def announce(port, event, left):
    # Percent-encoded by hand: urlencode writes a 0x20 byte as "+", which
    # opentracker takes for itself (and then knows no such torrent).
    query = "info_hash=%s&peer_id=-PFSWBED-00000000000&port=%d&uploaded=0" \
        "&downloaded=0&left=%d&compact=1&numwant=500&event=%s" % (
            urllib.parse.quote(bytes.fromhex(info_hash), safe=""), port, left, event)
    body = opener.open(url + "?" + query, timeout=5).read()
    if b"failure reason" in body:
        sys.exit("tracker: %r" % body)
    at = body.find(b"5:peers")
    if at < 0:
        return []
    colon = body.index(b":", at + 7)
    n = int(body[at + 7:colon])
    raw = body[colon + 1:colon + 1 + n]
    return ["%d.%d.%d.%d:%d" % (*raw[i:i + 4], raw[i + 4] << 8 | raw[i + 5])
            for i in range(0, n - n % 6, 6)]
if what == "peers":
    peers = announce(1, "started", 1)
    announce(1, "stopped", 1)
    print("\n".join(p for p in peers if not p.endswith(":1")))
else:
    announce(int(sys.argv[4]), "stopped", 0)
EOF
}

# Succeeds when the tracker lists ADDR for every torrent (or, with
# `absent`, for none).
#   tracker_lists ADDR [absent]
tracker_lists() {
  local addr=$1 want=${2:-present} hash peers
  for hash in $(hashes); do
    peers=$(tracker peers "$hash") || return 1
    if grep -q "^$addr:" <<<"$peers"; then
      [ "$want" = present ] || return 1
    else
      [ "$want" = absent ] || return 1
    fi
  done
}

# Lets the tracker serve TORRENT, a .torrent made by any tool that names
# the bed's tracker, unless it does already (the tracker serves only the
# info-hashes of its whitelist). Prints the info-hash.
admit_torrent() {
  local torrent=$1 hash pid
  [ -f "$torrent" ] || die "no such torrent: $torrent"
  hash=$(info_hash "$torrent")
  [ -n "$hash" ] || die "transmission-show gave no info-hash for $torrent"
  transmission-show "$torrent" | grep -qF "$TRACKER" ||
    die "$torrent does not name the bed's tracker $TRACKER (mktorrent -a $TRACKER ...)"
  if ! grep -qx "$hash" "$RUN/tracker/whitelist.txt"; then
    pid=$(live_pid "$RUN/tracker.pid") || die "opentracker is not running"
    # shellcheck disable=SC2016 # sh expands them
    flock "$RUN/tracker/whitelist.txt" sh -c \
      'grep -qx "$1" "$2" || { echo "$1" >>"$2"; echo "$1" >>"$3"; }' \
      sh "$hash" "$RUN/tracker/whitelist.txt" "$RUN/extra-hashes"
    kill -HUP "$pid"
    wait_for "the tracker to serve $hash" "$RUN/tracker.log" tracker peers "$hash" >/dev/null
  fi
  echo "$hash"
}

# Announces `stopped` from namespace NS for each entry of its address ADDR
# in the tracker's lists, so that no leecher is sent to a peer that is gone.
unregister() {
  local ns=$1 addr=$2 hash peer
  for hash in $(all_hashes); do
    for peer in $(tracker peers "$hash" 2>/dev/null | grep "^$addr:" || true); do
      ip netns exec "$ns" bash "$SELF" _tracker stop "$hash" "${peer##*:}" ||
        note "could not announce $peer stopped"
    done
  done
}

# ---------------------------------------------------------------- aria2c seeder

aria2_running() { live_pid "$RUN/aria2.pid" >/dev/null; }

# aria2c's JSON-RPC (inside its namespace): METHOD, then the params' JSON.
aria2_rpc() {
  aria2_rpc_in "$NS_ARIA2" "$@"
}

# aria2c's JSON-RPC in namespace NS (127.0.0.1:6800 there).
#   aria2_rpc_in NS METHOD PARAMS
aria2_rpc_in() {
  ip netns exec "$1" curl -sf --max-time 5 "$ARIA2_RPC" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":\"bed\",\"method\":\"$2\",\"params\":$3}"
}

# Prints "HASH SEEDER UPLOADED" per download aria2c has active.
aria2_status() {
  aria2_rpc aria2.tellActive '[["infoHash","seeder","uploadLength"]]' |
    grep -o '{[^{}]*}' | sed -n 's/.*"infoHash":"\([0-9a-f]*\)".*/&/p' |
    sed 's/.*"infoHash":"\([0-9a-f]*\)".*"seeder":"\([a-z]*\)".*"uploadLength":"\([0-9]*\)".*/\1 \2 \3/'
}

aria2_seeds_all() {
  aria2_running || { tail -n 5 "$RUN/aria2.log" >&2; die "the aria2c seeder exited"; }
  local status hash
  status=$(aria2_status 2>/dev/null) || return 1
  for hash in $(hashes); do
    grep -q "^$hash true " <<<"$status" || return 1
  done
}

start_aria2() {
  local args=() t torrent
  for t in $(torrents); do
    torrent="${t}_TORRENT"
    args+=("${!torrent}")
  done
  spawn "$NS_ARIA2" "$RUN/aria2.log" "$RUN/aria2.pid" \
    aria2c --enable-rpc --rpc-listen-port=6800 --check-integrity=true \
    --seed-ratio=0.0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false \
    --enable-peer-exchange=false --listen-port=6881 --bt-max-peers=0 \
    --file-allocation=none --summary-interval=0 --console-log-level=warn \
    --max-concurrent-downloads=10 -d "$DATA" "${args[@]}"
}

stop_aria2() {
  local pid
  pid=$(live_pid "$RUN/aria2.pid") || return 0
  # aria2.shutdown announces `stopped` to the tracker, then exits, 3 s
  # later (TERM is aria2c's emergency shutdown: no announce).
  aria2_rpc aria2.shutdown '[]' >/dev/null 2>&1 || true
  for _ in $(seq 150); do
    alive "$pid" || break
    sleep 0.1
  done
  stop_pid "$pid" 5
  rm -f "$RUN/aria2.pid"
  unregister "$NS_ARIA2" "$ARIA2_ADDR"
}

# ---------------------------------------------------------------- Transmission seeder

transmission_running() { live_pid "$RUN/transmission.pid" >/dev/null; }

transmission_remote() {
  timeout 30 ip netns exec "$NS_TRANSMISSION" transmission-remote "$TRANSMISSION_RPC" "$@"
}

# Transmission's torrent-get through the RPC of the daemon in namespace NS
# (127.0.0.1:9091 there): prints the answer. FIELDS: a JSON list of names.
#   transmission_get NS FIELDS
transmission_get() {
  local ns=$1 fields=$2 url=http://$TRANSMISSION_RPC/transmission/rpc sid
  sid=$(ip netns exec "$ns" curl -s --max-time 5 -o /dev/null -D - "$url" |
    sed -n 's/^X-Transmission-Session-Id: *\([^[:space:]]*\).*/\1/p') || return 1
  [ -n "$sid" ] || return 1
  ip netns exec "$ns" curl -sf --max-time 5 "$url" \
    -H "X-Transmission-Session-Id: $sid" \
    -d "{\"method\":\"torrent-get\",\"arguments\":{\"fields\":$fields}}"
}

# Prints "HASH STATUS PERCENT_DONE UPLOADED" per torrent (status 6: seeding),
# through the RPC (transmission-remote rounds what it shows).
transmission_status() {
  transmission_get "$NS_TRANSMISSION" '["hashString","status","percentDone","uploadedEver"]' |
    grep -o '{[^{}]*"hashString"[^{}]*}' |
    sed 's/.*"hashString":"\([0-9a-f]*\)".*/\1 &/' |
    awk '{ h = $1; s = $0
           match(s, /"status":[0-9]+/); st = substr(s, RSTART + 9, RLENGTH - 9)
           match(s, /"percentDone":[0-9.]+/); pd = substr(s, RSTART + 14, RLENGTH - 14)
           match(s, /"uploadedEver":[0-9]+/); up = substr(s, RSTART + 15, RLENGTH - 15)
           print h, st, pd, up }'
}

transmission_seeds_all() {
  transmission_running ||
    { tail -n 5 "$RUN/transmission.log" >&2; die "the Transmission seeder exited"; }
  local status hash
  status=$(transmission_status 2>/dev/null) || return 1
  for hash in $(hashes); do
    grep -q "^$hash 6 1 " <<<"$status" || return 1
  done
}

# The settings.json of a transmission-daemon bound to ADDR and saving in
# DIR; START: whether added torrents start at once; STOP: whether a
# torrent stops once complete (a seed ratio of 0), or seeds on.
#   transmission_settings ADDR DIR START STOP
transmission_settings() {
  cat <<EOF
{
  "bind-address-ipv4": "$1",
  "peer-port": 51413,
  "peer-port-random-on-start": false,
  "port-forwarding-enabled": false,
  "utp-enabled": false,
  "encryption": 0,
  "dht-enabled": false,
  "lpd-enabled": false,
  "pex-enabled": false,
  "blocklist-enabled": false,
  "download-dir": "$2",
  "incomplete-dir-enabled": false,
  "start-added-torrents": $3,
  "ratio-limit-enabled": $4,
  "ratio-limit": 0,
  "idle-seeding-limit-enabled": false,
  "speed-limit-up-enabled": false,
  "speed-limit-down-enabled": false,
  "alt-speed-enabled": false,
  "download-queue-enabled": false,
  "seed-queue-enabled": false,
  "queue-stalled-enabled": false,
  "peer-limit-global": 1000,
  "peer-limit-per-torrent": 500,
  "rpc-enabled": true,
  "rpc-bind-address": "127.0.0.1",
  "rpc-port": 9091,
  "rpc-authentication-required": false,
  "rpc-whitelist-enabled": false,
  "rpc-host-whitelist-enabled": false,
  "message-level": 1
}
EOF
}

start_transmission() {
  local conf=$RUN/transmission t torrent
  # An empty configuration directory each time: a daemon restarted on its
  # old one brings its torrents back as it left them.
  rm -rf "$conf"
  mkdir -p "$conf"
  transmission_settings "$TRANSMISSION_ADDR" "$DATA" false false >"$conf/settings.json"
  spawn "$NS_TRANSMISSION" "$RUN/transmission.log" "$RUN/transmission.pid" \
    transmission-daemon -f -g "$conf"
  wait_for "transmission-daemon's RPC" "$RUN/transmission.log" \
    transmission_remote -l >/dev/null 2>&1
  # Added paused, verified, then started: it seeds what it has checked.
  for t in $(torrents); do
    torrent="${t}_TORRENT"
    transmission_remote -a "${!torrent}" >/dev/null
  done
  transmission_remote -t all --no-seedratio >/dev/null
  transmission_remote -t all --verify >/dev/null
  transmission_remote -t all --start >/dev/null
}

stop_transmission() {
  local pid
  pid=$(live_pid "$RUN/transmission.pid") || return 0
  # --exit: it announces `stopped` to the tracker, then exits.
  transmission_remote --exit >/dev/null 2>&1 || true
  for _ in $(seq 200); do
    alive "$pid" || break
    sleep 0.1
  done
  stop_pid "$pid" 5
  rm -f "$RUN/transmission.pid"
  unregister "$NS_TRANSMISSION" "$TRANSMISSION_ADDR"
}

# ---------------------------------------------------------------- seeders

running_seeders() {
  local list=()
  if aria2_running; then list+=(aria2); fi
  if transmission_running; then list+=(transmission); fi
  if [ "${#list[@]}" = 0 ]; then echo none; else (IFS=,; echo "${list[*]}"); fi
}

# Starts and stops seeders until exactly SEEDERS run, then waits until each
# running one seeds everything and the tracker lists it, and each stopped
# one has left the tracker's lists.
set_seeders() {
  local want_aria2=0 want_transmission=0
  case $1 in
    both | aria2,transmission | transmission,aria2) want_aria2=1 want_transmission=1 ;;
    aria2 | aria2c) want_aria2=1 ;;
    transmission) want_transmission=1 ;;
    none) ;;
    *) die "unknown seeders '$1': both, aria2, transmission or none" ;;
  esac
  local began=$SECONDS
  if [ "$want_aria2" = 0 ] && aria2_running; then
    stop_aria2
    wait_for "the tracker to forget the aria2c seeder" "" tracker_lists "$ARIA2_ADDR" absent
  fi
  if [ "$want_transmission" = 0 ] && transmission_running; then
    stop_transmission
    wait_for "the tracker to forget the Transmission seeder" "" \
      tracker_lists "$TRANSMISSION_ADDR" absent
  fi
  if [ "$want_aria2" = 1 ] && ! aria2_running; then start_aria2; fi
  if [ "$want_transmission" = 1 ] && ! transmission_running; then start_transmission; fi
  if [ "$want_aria2" = 1 ]; then
    wait_for "the aria2c seeder to seed every torrent" "$RUN/aria2.log" aria2_seeds_all
    wait_for "the tracker to list the aria2c seeder ($ARIA2_ADDR)" "$RUN/aria2.log" \
      tracker_lists "$ARIA2_ADDR"
  fi
  if [ "$want_transmission" = 1 ]; then
    wait_for "the Transmission seeder to seed every torrent" "$RUN/transmission.log" \
      transmission_seeds_all
    wait_for "the tracker to list the Transmission seeder ($TRANSMISSION_ADDR)" \
      "$RUN/transmission.log" tracker_lists "$TRANSMISSION_ADDR"
  fi
  note "seeders $(running_seeders) ready in $((SECONDS - began))s"
}

# ---------------------------------------------------------------- namespaces for runs

# A new namespace on the bridge with a new address, for one run of a
# leecher or a seeder: sets NEW_NS and NEW_ADDR. Calls at the same time
# get different ones.
new_ns() {
  local n
  # shellcheck disable=SC2016 # sh expands them
  n=$(flock "$RUN/leechers" sh -c 'n=$(($(cat "$1") + 1)); echo "$n" >"$1"; echo "$n"' \
    sh "$RUN/leechers")
  [ "$n" -le 60000 ] || die "out of leecher addresses"
  NEW_NS=pfsw-l$n
  NEW_ADDR=10.78.$((1 + n / 250)).$((1 + n % 250))
  add_ns "$NEW_NS" "$NEW_ADDR"
}

# ---------------------------------------------------------------- leechers of a torrent

# `leech` keeps what it knows of each leecher it starts in $RUN/leech/NS:
# kind, mode, hash, started (when the client was given the torrent, in
# seconds since the epoch), pid, log, exit ("STATUS TIME" once the client
# exited) and state (its last state, as leech_state prints it).

LT_PYTHON=/usr/bin/python3

# As spawn, and writes "STATUS TIME" to EXITFILE when COMMAND exits.
#   spawn_noting_exit NS LOG PIDFILE EXITFILE COMMAND...
spawn_noting_exit() {
  local ns=$1 log=$2 pidfile=$3 exitfile=$4
  shift 4
  # sh's $0 is EXITFILE, "$@" the command.
  # shellcheck disable=SC2016 # sh expands them
  spawn "$ns" "$log" "$pidfile" \
    sh -c '"$@"; code=$?; echo "$code $(date +%s.%N)" >"$0"; exit "$code"' "$exitfile" "$@"
}

# aria2c, leeching TORRENT into OUT in namespace NS; MODE seed: it seeds
# on once complete, stop: it stops the torrent (and, its RPC on, stays).
#   start_aria2_leecher NS DIR TORRENT OUT MODE
start_aria2_leecher() {
  local ns=$1 dir=$2 torrent=$3 out=$4 seeding=(--seed-ratio=0.0)
  [ "$5" = stop ] && seeding=(--seed-time=0)
  date +%s.%N >"$dir/started"
  spawn_noting_exit "$ns" "$dir/log" "$dir/pid" "$dir/exit" \
    aria2c --enable-rpc --rpc-listen-port=6800 "${seeding[@]}" \
    --enable-dht=false --enable-dht6=false --bt-enable-lpd=false \
    --enable-peer-exchange=false --listen-port=6881 --bt-max-peers=0 \
    --file-allocation=none --summary-interval=0 --console-log-level=warn \
    -d "$out" "$torrent"
}

# transmission-daemon, from an empty configuration directory, with
# TORRENT added once its RPC answers (`started` is then).
#   start_transmission_leecher NS DIR TORRENT OUT MODE ADDR
start_transmission_leecher() {
  local ns=$1 dir=$2 torrent=$3 out=$4 stop=false
  [ "$5" = stop ] && stop=true
  mkdir -p "$dir/conf"
  transmission_settings "$6" "$out" true "$stop" >"$dir/conf/settings.json"
  spawn_noting_exit "$ns" "$dir/log" "$dir/pid" "$dir/exit" \
    transmission-daemon -f -g "$dir/conf"
  wait_for "transmission-daemon's RPC in $ns" "$dir/log" leech_remote "$ns" -l
  date +%s.%N >"$dir/started"
  leech_remote "$ns" -a "$torrent" || die "transmission-remote could not add $torrent"
  if [ "$stop" = false ]; then
    leech_remote "$ns" -t all --no-seedratio || die "transmission-remote --no-seedratio failed"
  fi
}

# transmission-remote, quiet, against the daemon in namespace NS.
leech_remote() {
  local ns=$1
  shift
  timeout 30 ip netns exec "$ns" transmission-remote "$TRANSMISSION_RPC" "$@" >/dev/null 2>&1
}

# libtorrent (python3-libtorrent), set as bench/swarm-libtorrent.py sets
# it; it writes its state to DIR/lt-state itself, with the time it saw
# every piece verified.
#   start_libtorrent_leecher NS DIR TORRENT OUT MODE
start_libtorrent_leecher() {
  local ns=$1 dir=$2 torrent=$3 out=$4 mode=$5
  cat >"$dir/leecher.py" <<'PY'
import os, sys, time
import libtorrent as lt

torrent, out, mode, state_file = sys.argv[1:5]
session = lt.session({
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.disabled,
})
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": out})
done_at = None

def write(state, status, why=""):
    at = "%.6f" % done_at if done_at else "-"
    with open(state_file + ".tmp", "w") as f:
        f.write("%s %d %d %s %s\n" % (state, status.total_wanted_done,
                                      status.total_payload_upload, at, why))
    os.replace(state_file + ".tmp", state_file)

while True:
    status = handle.status()
    if status.errc.value():
        write("failed", status, "libtorrent: " + status.errc.message())
        sys.exit(1)
    if done_at is None and status.is_seeding:
        done_at = time.time()
    write("done" if done_at else "running", status)
    if done_at and mode == "stop":
        break
    time.sleep(0.05 if done_at is None else 0.5)
PY
  date +%s.%N >"$dir/started"
  spawn_noting_exit "$ns" "$dir/log" "$dir/pid" "$dir/exit" \
    "$LT_PYTHON" "$dir/leecher.py" "$torrent" "$out" "$mode" "$dir/lt-state"
}

# Reads JSON-RPC answers on stdin, one a line (aria2c's tellActive and
# tellStopped, or Transmission's torrent-get), and prints the state of
# torrent HASH among them as "STATE DOWNLOADED UPLOADED - [WHY]" (see
# leech_state); fails when it is in none.
#   rpc_state aria2|transmission HASH
rpc_state() {
  python3 -c '
import json, sys
kind, info_hash = sys.argv[1:3]
for line in sys.stdin:
    if not line.strip():
        continue
    doc = json.loads(line)
    if kind == "aria2":
        rows = doc.get("result") or []
    else:
        rows = doc.get("arguments", {}).get("torrents") or []
    for row in rows:
        if kind == "aria2":
            if row.get("infoHash") != info_hash:
                continue
            down, up = int(row["completedLength"]), int(row["uploadLength"])
            if row.get("status") == "error":
                why = "aria2c error %s: %s" % (row.get("errorCode"), row.get("errorMessage"))
                print("failed", down, up, "-", why)
            elif row.get("seeder") == "true" or row.get("status") == "complete":
                print("done", down, up, "-")
            else:
                print("running", down, up, "-")
        else:
            if row.get("hashString") != info_hash:
                continue
            down, up, size = row["haveValid"], row["uploadedEver"], row["sizeWhenDone"]
            # Error 3 is a local one; 1 and 2 are the tracker'\''s.
            if row.get("error") == 3:
                print("failed", down, up, "-", "transmission: " + row.get("errorString", ""))
            elif size > 0 and row["leftUntilDone"] == 0 and down == size:
                print("done", down, up, "-")
            else:
                print("running", down, up, "-")
        sys.exit(0)
sys.exit(1)
' "$@"
}

# What the leecher in NS says now, asked over its RPC (or, for libtorrent,
# read from what it writes): "STATE DOWNLOADED UPLOADED DONE_AT [WHY]";
# fails while it cannot tell.
leech_poll() {
  local ns=$1 dir=$RUN/leech/$1 hash keys
  hash=$(cat "$dir/hash")
  case $(cat "$dir/kind") in
    aria2)
      keys='["infoHash","status","completedLength","uploadLength","seeder","errorCode","errorMessage"]'
      {
        aria2_rpc_in "$ns" aria2.tellActive "[$keys]" && echo &&
          aria2_rpc_in "$ns" aria2.tellStopped "[0,1000,$keys]" && echo
      } 2>/dev/null | rpc_state aria2 "$hash"
      ;;
    transmission)
      keys='["hashString","haveValid","sizeWhenDone","leftUntilDone","uploadedEver","error","errorString"]'
      { transmission_get "$ns" "$keys" && echo; } 2>/dev/null | rpc_state transmission "$hash"
      ;;
    libtorrent) grep . "$dir/lt-state" 2>/dev/null ;;
  esac
}

# The state of the leecher `leech` started in NS, as one line
# "STATE DOWNLOADED UPLOADED DONE_AT [WHY]", and kept in its directory:
# STATE is running, done (every piece verified), failed (the client says
# why) or exited (it ended before it completed, or was killed); DOWNLOADED
# and UPLOADED are bytes, as last seen; DONE_AT is when it completed
# (seconds since the epoch), or `-`: libtorrent's own time, else the
# first time it is seen complete.
leech_state() {
  local ns=$1 dir=$RUN/leech/$1 line last state down up at why code
  last=$(cat "$dir/state" 2>/dev/null || echo "running 0 0 -")
  read -r state down up at why <<<"$last"
  if [ "$state" = "done" ] || [ "$state" = failed ]; then
    # Known for good; the counts may still move.
    if line=$(leech_poll "$ns"); then
      read -r _ down up _ _ <<<"$line"
    fi
  elif line=$(leech_poll "$ns"); then
    read -r state down up at why <<<"$line"
    if [ "$state" = "done" ] && [ "$at" = - ]; then at=$(date +%s.%N); fi
  elif ! live_pid "$dir/pid" >/dev/null; then
    read -r code _ 2>/dev/null <"$dir/exit" || code="none (killed)"
    state=exited why="exit status $code"
  fi
  line="$state $down $up $at${why:+ $why}"
  echo "$line" >"$dir/state"
  echo "$line"
}

# Succeeds when the leecher in NS completed, fails (with a message) when
# it failed or exited.
leech_done() {
  local ns=$1 dir=$RUN/leech/$1 line
  line=$(leech_state "$ns")
  case ${line%% *} in
    done) return 0 ;;
    running) return 1 ;;
  esac
  tail -n 20 "$dir/log" | sed 's/^/    /' >&2
  die "the $(cat "$dir/kind") leecher in $ns did not complete: $line"
}

# ---------------------------------------------------------------- commands

need_root() {
  [ "$(id -u)" = 0 ] || die "run as root: namespaces and a bridge need it"
}

need_tools() {
  local tool
  for tool in ip setsid flock curl python3 mktorrent opentracker aria2c transmission-daemon \
    transmission-remote transmission-show; do
    command -v "$tool" >/dev/null 2>&1 ||
      die "$tool is missing (apt-get install iproute2 util-linux curl python3 mktorrent opentracker aria2 transmission-daemon transmission-cli)"
  done
}

# The WORKDIR of the bed that is up (the bridge's alias), if any.
bed_owner() {
  cat "/sys/class/net/$BR/ifalias" 2>/dev/null
}

cmd_up() {
  need_root
  need_tools
  set_workdir "$1" create
  local seeders=${2:-both} owner began=$SECONDS
  if ip link show "$BR" >/dev/null 2>&1; then
    owner=$(bed_owner)
    if [ -n "$owner" ] && [ "$owner" != "$W" ] && [ -d "$owner" ]; then
      die "a bed is up already, for $owner: bed.sh down $owner"
    fi
    [ "$owner" = "$W" ] && die "the bed of $W is up already: use bed.sh seeders, or down"
    note "removing a bed left over by ${owner:-someone} (its directory is gone)"
    cmd_down
  fi
  if ip -4 route show | grep -v "dev $BR" | grep -q '^10\.78\.'; then
    die "10.78.0.0/16 is already routed here; the bed needs it"
  fi
  make_data
  write_env
  mkdir -p "$RUN"
  rm -f "$RUN"/*.pid "$RUN/extra-hashes"
  rm -rf "$RUN/leech"
  echo 0 >"$RUN/leechers"
  # From here on a failure takes down what was built.
  trap 'cmd_down >/dev/null 2>&1' EXIT
  ip link add "$BR" type bridge forward_delay 0
  ip link set "$BR" alias "$W"
  ip addr add "$ROOT_ADDR/16" dev "$BR"
  ip link set "$BR" up
  add_ns "$NS_TRACKER" "$TRACKER_ADDR"
  add_ns "$NS_ARIA2" "$ARIA2_ADDR"
  add_ns "$NS_TRANSMISSION" "$TRANSMISSION_ADDR"
  start_tracker
  set_seeders "$seeders"
  trap - EXIT
  note "up in $((SECONDS - began))s"
  print_env
}

cmd_seeders() {
  need_root
  set_workdir "$1"
  [ -n "${2:-}" ] || { usage >&2; exit 2; }
  [ "$(bed_owner)" = "$W" ] || die "the bed of $W is not up"
  set_seeders "$2"
  echo "SEEDERS=$(running_seeders)"
}

need_bed() {
  need_root
  set_workdir "$1"
  [ "$(bed_owner)" = "$W" ] || die "the bed of $W is not up"
}

cmd_leecher_ns() {
  need_bed "${1:-}"
  new_ns
  echo "LEECHER_NS=$NEW_NS"
  echo "LEECHER_ADDR=$NEW_ADDR"
}

cmd_seeder_ns() {
  need_bed "${1:-}"
  new_ns
  echo "SEEDER_NS=$NEW_NS"
  echo "SEEDER_ADDR=$NEW_ADDR"
}

cmd_torrent() {
  need_bed "${1:-}"
  [ -n "${2:-}" ] || { usage >&2; exit 2; }
  echo "TORRENT_HASH=$(admit_torrent "$2")"
}

# Succeeds when the tracker lists ADDR among the peers of HASH.
listed() {
  tracker peers "$1" 2>/dev/null | grep -q "^$2:"
}

cmd_wait_listed() {
  need_bed "${1:-}"
  local torrent=${2:-} addr=${3:-} hash
  if [ -z "$torrent" ] || [ -z "$addr" ]; then usage >&2; exit 2; fi
  hash=$(admit_torrent "$torrent")
  wait_for "the tracker to list $addr for $(basename "$torrent")" "" listed "$hash" "$addr"
}

cmd_leech() {
  need_bed "${1:-}"
  local kind=${2:-} torrent=${3:-} out=${4:-} mode=${5:-seed} hash dir
  if [ -z "$torrent" ] || [ -z "$out" ]; then usage >&2; exit 2; fi
  case $kind in
    aria2 | aria2c) kind=aria2 ;;
    transmission) ;;
    libtorrent)
      "$LT_PYTHON" -c 'import libtorrent' 2>/dev/null ||
        die "$LT_PYTHON cannot import libtorrent (apt-get install python3-libtorrent)"
      ;;
    *) die "unknown leecher '$kind': aria2, transmission or libtorrent" ;;
  esac
  case $mode in
    seed | stop) ;;
    *) die "unknown mode '$mode': seed or stop" ;;
  esac
  [ -f "$torrent" ] || die "no such torrent: $torrent"
  torrent=$(cd "$(dirname "$torrent")" && pwd)/$(basename "$torrent")
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  hash=$(admit_torrent "$torrent")
  new_ns
  # A failure from here on takes the namespace down again.
  trap 'del_ns "$NEW_NS"' EXIT
  dir=$RUN/leech/$NEW_NS
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$kind" >"$dir/kind"
  echo "$mode" >"$dir/mode"
  echo "$hash" >"$dir/hash"
  case $kind in
    aria2) start_aria2_leecher "$NEW_NS" "$dir" "$torrent" "$out" "$mode" ;;
    transmission)
      start_transmission_leecher "$NEW_NS" "$dir" "$torrent" "$out" "$mode" "$NEW_ADDR"
      ;;
    libtorrent) start_libtorrent_leecher "$NEW_NS" "$dir" "$torrent" "$out" "$mode" ;;
  esac
  trap - EXIT
  echo "LEECH_NS=$NEW_NS"
  echo "LEECH_ADDR=$NEW_ADDR"
  echo "LEECH_PID=$(cat "$dir/pid")"
}

# The directory of the leecher `leech` started in NS, checked.
leech_dir() {
  [ -f "$RUN/leech/${1:-}/kind" ] || die "bed.sh leech started no leecher in '${1:-}'"
  echo "$RUN/leech/$1"
}

cmd_wait_complete() {
  need_bed "${1:-}"
  shift
  [ "$#" -gt 0 ] || { usage >&2; exit 2; }
  local ns dir state down up at
  for ns in "$@"; do
    leech_dir "$ns" >/dev/null
  done
  # Often: the time a leecher is first seen complete is its time.
  WAIT_STEP=0.05
  for ns in "$@"; do
    wait_for "the $(cat "$RUN/leech/$ns/kind") leecher in $ns to complete" "$RUN/leech/$ns/log" \
      leech_done "$ns"
  done
  for ns in "$@"; do
    dir=$RUN/leech/$ns
    read -r state down up at _ <"$dir/state"
    echo "LEECH_NS=$ns"
    echo "LEECH_SECONDS=$(awk -v a="$at" -v b="$(cat "$dir/started")" 'BEGIN { printf "%.3f", a - b }')"
    echo "LEECH_DOWNLOADED=$down"
    echo "LEECH_UPLOADED=$up"
  done
}

cmd_leech_status() {
  need_bed "${1:-}"
  local dir state down up at why
  dir=$(leech_dir "${2:-}")
  read -r state down up at why <<<"$(leech_state "$2")"
  echo "LEECH_STATE=$state"
  echo "LEECH_DOWNLOADED=$down"
  echo "LEECH_UPLOADED=$up"
  if [ -n "$why" ]; then echo "LEECH_WHY=$why"; fi
}

cmd_leecher_del() {
  need_root
  set_workdir "$1"
  local ns=${2:-} addr hash peer
  case $ns in
    pfsw-l[0-9]*) ;;
    *) die "not a leecher namespace: '$ns'" ;;
  esac
  ip netns list | grep -q "^$ns\b" || return 0
  kill_ns_pids "$ns"
  addr=$(ip -n "$ns" -4 -o addr show dev pfsw0 | awk '{ sub("/.*", "", $4); print $4 }')
  # Whatever the leecher left in the tracker's lists (say, a seed it
  # became and never announced gone).
  if [ -n "$addr" ] && [ -f "$W/bed.env" ]; then
    unregister "$ns" "$addr"
  fi
  del_ns "$ns"
}

cmd_uploaded() {
  need_root
  set_workdir "$1"
  local hash aria=0 trans=0
  hash=$(hash_of "${2:-}")
  if aria2_running; then
    aria=$(aria2_status | awk -v h="$hash" '$1 == h { print $3 }')
  fi
  if transmission_running; then
    trans=$(transmission_status | awk -v h="$hash" '$1 == h { print $4 }')
  fi
  echo "ARIA2_UPLOADED=${aria:-0}"
  echo "TRANSMISSION_UPLOADED=${trans:-0}"
}

cmd_down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^pfsw-' || true); do
    del_ns "$ns"
  done
  ip link del "$BR" 2>/dev/null || true
  if [ -n "${W:-}" ] && [ -d "$W/run" ]; then
    rm -f "$W"/run/*.pid
  fi
  return 0
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  seeders) shift; cmd_seeders "$@" ;;
  leecher-ns) shift; cmd_leecher_ns "$@" ;;
  leecher-del) shift; cmd_leecher_del "$@" ;;
  seeder-ns) shift; cmd_seeder_ns "$@" ;;
  torrent) shift; cmd_torrent "$@" ;;
  wait-listed) shift; cmd_wait_listed "$@" ;;
  leech) shift; cmd_leech "$@" ;;
  wait-complete) shift; cmd_wait_complete "$@" ;;
  leech-status) shift; cmd_leech_status "$@" ;;
  uploaded) shift; cmd_uploaded "$@" ;;
  env) shift; set_workdir "${1:-}"; print_env ;;
  # Internal: the tracker function, run inside a leecher's namespace.
  _tracker) shift; tracker "$@" ;;
  down)
    shift
    need_root
    if [ -n "${1:-}" ] && [ -d "$1" ]; then set_workdir "$1"; fi
    cmd_down
    ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
