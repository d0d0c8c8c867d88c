#!/usr/bin/env bash
# Builds the smallest partfetch binary, for machines where every kilobyte
# counts. The standard library is compiled with partfetch, under the same
# release profile (optimised for size, link-time optimised together), and
# a panic aborts at once instead of printing a message and a backtrace.
# That printer (gimli, addr2line, a demangler, an inflater) is about 200 KB
# of every binary built against the precompiled standard library, and it
# cannot be left out any other way.
#
#   scripts/build-small.sh                          # with TLS
#   scripts/build-small.sh --no-default-features    # plain HTTP
#
# Arguments go to `cargo build`. The binary goes under target/small/ (or
# $CARGO_TARGET_DIR); its path is the last line printed.
#
# It needs a compiler with the source of its standard library, the first of:
#   $RUSTC, when set;
#   rustup's nightly with rust-src  (rustup component add rust-src --toolchain nightly);
#   Debian's rustc-web with its source  (apt-get install rustc-web rust-web-src).
# The flags it uses are unstable: a stable compiler gets RUSTC_BOOTSTRAP=1,
# for this build only.
set -euo pipefail

cd "$(dirname "$0")/.."

die() {
  echo "build-small: $*" >&2
  exit 1
}

# Whether the compiler RUSTC has its standard library's source installed.
has_std_source() {
  local sysroot
  sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
  [ -f "$sysroot/lib/rustlib/src/rust/library/std/Cargo.toml" ]
}

CARGO=${CARGO:-cargo}
if [ -n "${RUSTC:-}" ]; then
  has_std_source "$RUSTC" || die "\$RUSTC ($RUSTC) has no standard library source (lib/rustlib/src/rust/library)"
elif nightly=$(rustup which --toolchain nightly rustc 2>/dev/null) && has_std_source "$nightly"; then
  RUSTC=$nightly
  CARGO=$(rustup which --toolchain nightly cargo)
elif [ -x /usr/bin/rustc ] && has_std_source /usr/bin/rustc; then
  RUSTC=/usr/bin/rustc
else
  die "no compiler with its standard library's source: run
    rustup component add rust-src --toolchain nightly
or, on Debian 12,
    apt-get install rustc-web rust-web-src
or set RUSTC to a compiler that has it"
fi
export RUSTC RUSTC_BOOTSTRAP=1

# Recent compilers have a panic strategy of their own for this; older
# ones have a feature of the standard library.
if "$RUSTC" -Zunstable-options -Cpanic=immediate-abort --print sysroot >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort"
  std_features=()
else
  std_features=(-Zbuild-std-features=panic_immediate_abort)
fi

# --target is what keeps these flags off build scripts, which run on this
# machine against the precompiled standard library.
host=$("$RUSTC" -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-target/small}
echo "build-small: $("$RUSTC" -V) at $RUSTC" >&2
"$CARGO" build --release --target "$host" --target-dir "$target_dir" \
  -Zbuild-std=std,panic_abort "${std_features[@]}" "$@"

binary=$target_dir/$host/release/partfetch
# The point of this build: no backtrace printer, which reads RUST_BACKTRACE.
if grep -q RUST_BACKTRACE "$binary"; then
  die "$binary still holds the panic message printer; the flags did not take"
fi
echo "build-small: $(stat -c %s "$binary") bytes" >&2
echo "$binary"
