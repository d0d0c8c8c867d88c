//! The `partfetch` command. Everything it does is in `cli` and the library.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::run(std::env::args_os().skip(1)));
}
