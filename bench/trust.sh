#!/usr/bin/env bash
# What each way of trusting an HTTPS server costs: a 4 KiB file fetched
# whole (start-up, connect, handshake with the certificate checked,
# request, answer, exit) from nginx on 127.0.0.1, the server's certificate
# trusted three ways: a chain to a private CA (`--cacert ca.pem`), the
# server's own self-signed certificate, as `openssl req -x509` makes it,
# in the CA file (`--cacert self.pem`), and its key pinned
# (`--pinnedpubkey sha256//…`). partfetch against curl (and wget where it
# has the option), side by side in the same run, timed by hyperfine. Prints
# a Markdown table for BENCHMARKS.md. The runs are taken in five rounds,
# each timing the three ways in turn, and the medians are of all runs.
#
#   bench/trust.sh           # 200 runs of each command
#   RUNS=500 bench/trust.sh  # more runs
#   bench/trust.sh --quick   # 10 runs: checks that everything works
#
# Both certificates have P-256 keys, so that the handshakes differ only in
# how the certificate is trusted. Every command is run once before it is
# timed and must fetch the file whole; no timed run may fail. curl checks a
# chain even with a pin, so its pinned command names the self-signed
# certificate as its CA file too. Everything lives in one directory under
# /tmp, removed on exit; nginx is stopped on exit, Ctrl-C included.
set -euo pipefail

usage() {
  sed -n '2,22s/^# \{0,1\}//p' "$0"
}

RUNS=${RUNS:-200}
for arg in "$@"; do
  case $arg in
    --quick) RUNS=10 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs_must_be_positive

need_tools curl hyperfine jq cargo openssl
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"

build_release
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_workdir
note "work directory: $WORK"

mkdir -p "$WORK/www"
head -c 4096 /dev/urandom >"$WORK/www/small.bin"

bench_make_pki "$WORK/pki"
CA=$WORK/pki/ca.pem
SELF=$WORK/pki/self.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$WORK/pki/self.key" -out "$SELF" -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null || die "openssl could not make $SELF"
PIN=sha256//$(openssl x509 -in "$SELF" -pubkey -noout | openssl pkey -pubin -outform der |
  openssl dgst -sha256 -binary | openssl enc -base64)

CHAIN_PORT=$(free_port)
SELF_PORT=$(free_port)
while [ "$SELF_PORT" = "$CHAIN_PORT" ]; do SELF_PORT=$(free_port); done
nginx_start "$WORK/nginx" "$(nginx_server "$CHAIN_PORT" "$WORK/www" "$WORK/pki/server.pem" "$WORK/pki/server.key")
$(nginx_server "$SELF_PORT" "$WORK/www" "$SELF" "$WORK/pki/self.key")"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

TOOLS=(partfetch curl)
command -v wget >/dev/null 2>&1 && TOOLS+=(wget)
KINDS=(chain self pin)
declare -A KIND_TITLE=(
  [chain]="a private CA's chain (\`--cacert ca.pem\`)"
  [self]="the self-signed certificate in the CA file (\`--cacert self.pem\`)"
  [pin]="the key pinned (\`--pinnedpubkey sha256//…\`)"
)

# Prints TOOL's command line that fetches the file to OUT trusting the
# server the KIND way, or nothing when TOOL has no such option. Quoted for
# a shell.
#   command_line TOOL KIND OUT
command_line() {
  local tool=$1 kind=$2 out=$3 url
  case $kind in
    chain) url="https://127.0.0.1:$CHAIN_PORT/small.bin" ;;
    *) url="https://127.0.0.1:$SELF_PORT/small.bin" ;;
  esac
  case $tool/$kind in
    partfetch/chain) printf '%q -q --cacert %q %q %q' "$BIN" "$CA" "$url" "$out" ;;
    partfetch/self) printf '%q -q --cacert %q %q %q' "$BIN" "$SELF" "$url" "$out" ;;
    partfetch/pin) printf '%q -q --pinnedpubkey %q %q %q' "$BIN" "$PIN" "$url" "$out" ;;
    curl/chain) printf 'curl -s --cacert %q -o %q %q' "$CA" "$out" "$url" ;;
    curl/self) printf 'curl -s --cacert %q -o %q %q' "$SELF" "$out" "$url" ;;
    curl/pin) printf 'curl -s --cacert %q --pinnedpubkey %q -o %q %q' "$SELF" "$PIN" "$out" "$url" ;;
    wget/chain) printf 'wget -q --ca-certificate=%q -O %q %q' "$CA" "$out" "$url" ;;
    wget/self) printf 'wget -q --ca-certificate=%q -O %q %q' "$SELF" "$out" "$url" ;;
    wget/pin) ;;
  esac
}

for kind in "${KINDS[@]}"; do
  for tool in "${TOOLS[@]}"; do
    line=$(command_line "$tool" "$kind" "$WORK/check.bin")
    [ -n "$line" ] || continue
    rm -f "$WORK/check.bin"
    eval "$line" >"$WORK/check.out" 2>&1 || die "$tool ($kind) failed: $(cat "$WORK/check.out")"
    cmp -s "$WORK/check.bin" "$WORK/www/small.bin" || die "$tool's copy ($kind) differs"
  done
done

# The runs are taken in ROUNDS rounds, each timing every kind in turn, so
# that a spell of load from elsewhere falls on all of them alike.
ROUNDS=5
[ "$RUNS" -lt "$ROUNDS" ] && ROUNDS=$RUNS
per_round=$(((RUNS + ROUNDS - 1) / ROUNDS))
for round in $(seq "$ROUNDS"); do
  for kind in "${KINDS[@]}"; do
    commands=()
    for tool in "${TOOLS[@]}"; do
      line=$(command_line "$tool" "$kind" /dev/null)
      [ -n "$line" ] && commands+=(-n "$tool" "$line")
    done
    note "timing: ${KIND_TITLE[$kind]}, round $round of $ROUNDS, $per_round runs each"
    if ! hyperfine --style none --warmup 3 --runs "$per_round" --shell=none \
      --export-json "$WORK/$kind.$round.json" "${commands[@]}" >"$WORK/$kind.log" 2>&1; then
      cat "$WORK/$kind.log" >&2
      die "hyperfine failed"
    fi
  done
done
nginx_stop "$WORK/nginx"

# Prints the median of all runs of TOOL's command for KIND in milliseconds,
# or nothing when that tool was not timed for KIND.
median_ms() {
  local kind=$1 tool=$2
  jq -r --arg t "$tool" '.results[] | select(.command == $t) | .times[]' "$WORK/$kind".*.json |
    sort -g | awk '
      { v[NR] = $1 }
      END {
        if (NR == 0) exit
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m * 1000
      }'
}

versions="curl $(curl --version | awk 'NR == 1 { print $2 }')"
case " ${TOOLS[*]} " in
  *" wget "*) versions+=", wget $(wget --version | awk 'NR == 1 { print $3 }')" ;;
esac
header="| the server trusted through |"
rule="| --- |"
for tool in "${TOOLS[@]}"; do
  header+=" $tool |"
  rule+=" ---: |"
done
for tool in "${TOOLS[@]:1}"; do
  header+=" partfetch / $tool |"
  rule+=" ---: |"
done
header+=" partfetch / partfetch with the chain |"
rule+=" ---: |"

cat <<EOF

## Trusting a server three ways

$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), load $LOAD_BEFORE before and $(cut -d' ' -f1-3 /proc/loadavg) after. partfetch $(bench_commit); $versions;
nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||') on 127.0.0.1. A 4 KiB file over HTTPS, whole command; medians of $RUNS runs
of each command in $ROUNDS rounds that take the three ways in turn (hyperfine, 3 warm-up
runs a round, no shell), in milliseconds.

$header
$rule
EOF
chain=$(median_ms chain partfetch)
for kind in "${KINDS[@]}"; do
  line="| ${KIND_TITLE[$kind]} |"
  ratios=
  ours=$(median_ms "$kind" partfetch)
  for tool in "${TOOLS[@]}"; do
    theirs=$(median_ms "$kind" "$tool")
    line+=" ${theirs:-–} |"
    if [ "$tool" != partfetch ]; then
      if [ -n "$theirs" ]; then ratios+=" $(ratio "$ours" "$theirs") |"; else ratios+=" – |"; fi
    fi
  done
  echo "$line$ratios $(ratio "$ours" "$chain") |"
done
