# shellcheck shell=bash
# Shared functions for the benchmarks in bench/. Source it, don't run it:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_workdir                       # WORK=/tmp/partfetch-bench.XXXX, removed on exit
#   bench_make_pki "$WORK/pki"          # ca.pem, server.pem, server.key for 127.0.0.1
#   port=$(free_port)
#   nginx_start "$WORK/ngx" "$(nginx_server "$port" "$WORK/www")"
#   ...
#   nginx_stop "$WORK/ngx"              # or leave it to the exit trap
#
# Owns: free ports on 127.0.0.1, nginx instances with generated configs
# (each in a directory of its own: config, pid file, logs, temp dirs), test
# certificates, timing one command with GNU time, medians, and the cleanup
# trap that stops every nginx started here and removes the work directory,
# also on Ctrl-C. Leaves to each benchmark: what to serve, what to time, and
# the table it prints.
#
# Everything listens on 127.0.0.1 only. Needs bash 4, nginx, openssl,
# python3 or ss (for free ports), and /usr/bin/time (GNU time).

# The nginx binary: $NGINX, else on PATH, else Debian's /usr/sbin/nginx.
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# Directories of the nginx instances started by nginx_start and not yet stopped.
NGINX_DIRS=()
# The work directory bench_workdir made (removed by bench_cleanup).
WORK=${WORK:-}

die() {
  echo "error: $*" >&2
  exit 1
}

note() {
  echo "# $*" >&2
}

# Stops with a usage error unless $RUNS is a positive whole number.
runs_must_be_positive() {
  case ${RUNS:-} in
    '' | *[!0-9]* | 0) echo "error: RUNS must be a positive number, not '${RUNS:-}'" >&2; exit 2 ;;
  esac
}

# Stops unless $BASELINE (another build of partfetch to time beside this
# one) is unset, empty or an executable.
baseline_must_run() {
  [ -z "${BASELINE:-}" ] || [ -x "$BASELINE" ] || die "BASELINE=$BASELINE is not an executable"
}

# Sets TOOLS to the builds of partfetch to time: partfetch, and baseline
# when $BASELINE is set. bin_of TOOL prints a build's binary ($BIN is
# build_release's).
partfetch_builds() {
  TOOLS=(partfetch)
  [ -n "${BASELINE:-}" ] && TOOLS+=(baseline)
  return 0
}
bin_of() {
  case $1 in
    partfetch) echo "$BIN" ;;
    baseline) echo "$BASELINE" ;;
  esac
}

# Stops unless every TOOL is on PATH; TOOL:PACKAGE names the Debian
# package that has it, for the message.
need_tools() {
  local spec tool
  for spec in "$@"; do
    tool=${spec%%:*}
    command -v "$tool" >/dev/null 2>&1 && continue
    [ "$spec" = "$tool" ] && die "$tool is missing"
    die "$tool is missing (apt-get install ${spec#*:})"
  done
}

# Stops unless GNU time (for wall, CPU and peak RSS) is installed.
need_gnu_time() {
  [ -x /usr/bin/time ] || die "GNU time is missing (apt-get install time)"
}

# Builds the release binary where its path is known (CARGO_TARGET_DIR is
# ignored) and sets BIN to it. Run from the repository's root.
build_release() {
  unset CARGO_TARGET_DIR
  note "building: cargo build --release"
  cargo build --release --quiet
  # shellcheck disable=SC2034 # read by the scripts that source this file
  BIN=$PWD/target/release/partfetch
}

# Prints the commit the figures are of: its short hash, and "+ uncommitted
# changes" when tracked files differ from it.
bench_commit() {
  local commit
  commit=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
  fi
  echo "$commit"
}

# ---------------------------------------------------------------- cleanup

# Stops every nginx still running and removes $WORK. Installed as the EXIT
# trap by bench_workdir; INT and TERM exit through it too.
bench_cleanup() {
  local dir
  for dir in "${NGINX_DIRS[@]}"; do
    nginx_stop "$dir"
  done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    rm -rf -- "$WORK"
  fi
}

# Makes a fresh work directory under /tmp (or $TMPDIR) in $WORK and arranges
# for it, and every nginx started later, to go away when the script exits,
# however it exits.
bench_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/partfetch-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------- ports

# Prints a TCP port on 127.0.0.1 that nothing listens on right now. Another
# process may take it before we do; nginx_start reports that clearly.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    if ! ss -Htln "sport = :$port" | grep -q .; then
      echo "$port"
      return
    fi
  done
}

# ---------------------------------------------------------------- data

# Writes FILE of MIB MiB (a multiple of 16): one random 16 MiB block,
# repeated. Random, so that nothing on the way compresses it; repeated, so
# that a GiB takes a second to make rather than /dev/urandom's time.
bench_data() {
  local file=$1 mib=$2 block
  block=$(mktemp "$WORK/block.XXXXXX")
  head -c 16M /dev/urandom >"$block"
  for _ in $(seq $((mib / 16))); do cat "$block"; done >"$file"
  rm -f "$block"
}

# ---------------------------------------------------------------- certificates

# Makes a test CA and a server certificate for 127.0.0.1 and localhost in
# DIR: ca.pem (for --cacert), server.pem, server.key. P-256 keys, valid 2 days.
bench_make_pki() {
  local dir=$1
  command -v openssl >/dev/null 2>&1 || die "openssl is missing (apt-get install openssl)"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=partfetch bench CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 2 -out server.pem -extfile server.ext 2>/dev/null
  ) || die "openssl could not make the test certificates in $dir"
}

# ---------------------------------------------------------------- nginx

# Prints a `server { }` block serving ROOT on 127.0.0.1:PORT, plain HTTP, or
# HTTPS when CERT and KEY are given. EXTRA is more directives for the block
# (e.g. "limit_rate 20m;").
#   nginx_server PORT ROOT [CERT KEY] [EXTRA]
nginx_server() {
  local port=$1 root=$2 cert=${3:-} key=${4:-} extra=${5:-}
  if [ -n "$cert" ]; then
    cat <<EOF
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $root;
        $extra
    }
EOF
  else
    cat <<EOF
    server {
        listen 127.0.0.1:$port;
        root $root;
        $extra
    }
EOF
  fi
}

# Prints the temp-path directives for the modules this nginx has (nginx-light
# lacks scgi and uwsgi, and a directive of a missing module is an error).
nginx_temp_paths() {
  local dir=$1 m
  local built
  built=$("$NGINX" -V 2>&1)
  echo "    client_body_temp_path $dir/tmp/client_body;"
  for m in proxy fastcgi uwsgi scgi; do
    case $built in
      *"--without-http_${m}_module"*) ;;
      *) echo "    ${m}_temp_path $dir/tmp/$m;" ;;
    esac
  done
}

# Starts nginx with a generated configuration in DIR (created) holding the
# given server blocks; waits until it listens. DIR gets nginx.conf,
# nginx.pid, error.log, stderr.log, access.log, tmp/. The access log has the connection
# number and its request count (keep-alive checks), the TLS protocol and
# cipher ("-" on plain HTTP), then the request line and the user agent:
#   $connection $connection_requests $server_port $status $body_bytes_sent
#   $ssl_protocol $ssl_cipher "$request" "$http_user_agent"
# $NGINX_WORKERS sets worker_processes (default 1), $NGINX_WORKER_CONNECTIONS
# worker_connections (default 1024). $NGINX_WRAP, if set, is a
# command prefix to run nginx under (e.g. "ip netns exec ns1").
#   nginx_start DIR SERVER_BLOCKS
nginx_start() {
  local dir=$1 servers=$2
  [ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
  mkdir -p "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  local user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$dir/nginx.conf" <<EOF
# Generated by bench/lib.sh nginx_start.
$user
daemon off;
worker_processes ${NGINX_WORKERS:-1};
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections ${NGINX_WORKER_CONNECTIONS:-1024};
}
http {
    types {
        application/octet-stream bin;
        text/plain txt;
    }
    default_type application/octet-stream;
    log_format bench '\$connection \$connection_requests \$server_port \$status \$body_bytes_sent '
                     '\$ssl_protocol \$ssl_cipher "\$request" "\$http_user_agent"';
    access_log $dir/access.log bench;
$(nginx_temp_paths "$dir")
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
$servers
}
EOF
  rm -f "$dir/nginx.pid"
  # shellcheck disable=SC2086 # NGINX_WRAP is a command prefix, split on purpose.
  ${NGINX_WRAP:-} "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    </dev/null >"$dir/stderr.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/child.pid"
  NGINX_DIRS+=("$dir")
  # nginx writes its pid file once its sockets listen.
  local i
  for i in $(seq 100); do
    if [ -s "$dir/nginx.pid" ]; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.05
  done
  echo "nginx did not start; its error log and standard error say:" >&2
  if [ -s "$dir/error.log" ]; then
    sed 's/^/    /' "$dir/error.log" >&2
  else
    sed 's/^/    /' "$dir/stderr.log" >&2
  fi
  die "nginx failed to start (config: $dir/nginx.conf)"
}

# Stops the nginx started in DIR (gracefully, then by force) and waits for it.
nginx_stop() {
  local dir=$1 pid i
  [ -d "$dir" ] && dir=$(cd "$dir" && pwd)
  pid=$(cat "$dir/child.pid" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  rm -f "$dir/child.pid"
  local kept=()
  for i in "${NGINX_DIRS[@]}"; do
    [ "$i" = "$dir" ] || kept+=("$i")
  done
  NGINX_DIRS=("${kept[@]}")
}

# ---------------------------------------------------------------- measuring

# Runs a command under GNU time and appends one line "WALL CPU RSS_KB" to
# FILE (CPU is user + sys seconds, RSS the peak resident set). The command's
# stdout goes to /dev/null; it must succeed.
#   time_run FILE COMMAND...
time_run() {
  local out=$1 t
  shift
  t=$(mktemp "$WORK/time.XXXXXX")
  if ! /usr/bin/time -f '%e %U %S %M' -o "$t" "$@" >/dev/null; then
    cat "$t" >&2
    die "failed: $*"
  fi
  # The last line: GNU time puts "Command exited with non-zero status" first.
  tail -n 1 "$t" | awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' >>"$out"
  rm -f "$t"
}

# Prints the median of column COL (1-based) of FILE's lines.
median() {
  local file=$1 col=$2
  awk -v c="$col" '{ print $c }' "$file" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "nan"; exit }
      if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# Prints A/B to two decimals.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# Prints "yes" when A <= B, else "**no**" (for a table's "met" column).
meets() {
  awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "yes" : "**no**" }'
}
