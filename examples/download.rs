//! Saves a URL to a file over several connections, with a progress line,
//! and continues where it stopped when run again after an interruption
//! (Ctrl-C, a kill, a lost network): the download API an embedder uses.
//!
//!     cargo run --release --example download -- http://127.0.0.1:8000/big.iso big.iso [MIRROR...]
//!
//! Then, with `--read`, the same URL read through `std::io::Read` and
//! compared with the file:
//!
//!     cargo run --release --example download -- --read http://127.0.0.1:8000/big.iso big.iso
//!
//! Options in the environment: `CONNECTIONS` (default 4), `SHA256` (hex),
//! `LIMIT_RATE` (bytes per second). The progress line shows on a terminal
//! only.

use std::io::{IsTerminal, Read, Write};

use partfetch::{Client, Event, Progress, Resume};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let read = args.first().is_some_and(|a| a == "--read");
    if read {
        args.remove(0);
    }
    let (Some(url), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: download [--read] URL FILE [MIRROR...]");
        std::process::exit(2);
    };
    let outcome = match read {
        true => compare(url, path),
        false => save(url, path, &args[2..]),
    };
    if let Err(err) = outcome {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn save(url: &str, path: &str, mirrors: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .on_event(|event: &Event| eprintln!("\r{event}"))
        .build()?;
    let connections = env_number("CONNECTIONS").unwrap_or(4) as usize;
    let mut download = client
        .download(url)
        .connections(connections)
        .resume(Resume::IfPossible);
    for mirror in mirrors {
        download = download.mirror(mirror);
    }
    if let Ok(hex) = std::env::var("SHA256") {
        download = download.sha256(&hex);
    }
    if let Some(rate) = env_number("LIMIT_RATE") {
        download = download.limit_rate(rate);
    }
    // The callback may borrow locals: the download ends before `to_path`
    // returns.
    let mut most_connections = 0;
    let saved = download
        .on_progress(|p: &Progress| {
            most_connections = most_connections.max(p.fetching.unwrap_or(0));
            show(p);
        })
        .to_path(path)?;
    println!(
        "saved {} bytes ({} from an earlier run), up to {most_connections} pieces at once",
        saved.bytes, saved.resumed_from
    );
    Ok(())
}

fn show(p: &Progress) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let total = p
        .total
        .map_or(String::from("?"), |t| format!("{:.1}", mib(t)));
    let mut line = format!(
        "\r{:.1} / {total} MiB  {:.1} MiB/s",
        mib(p.done),
        mib(p.rate)
    );
    if let (Some(fetching), Some(sources)) = (p.fetching, p.sources) {
        line.push_str(&format!("  {fetching} conn, {sources} src"));
    }
    if p.finished {
        line.push('\n');
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

/// Reads `url` through `std::io::Read` and checks it against `path`.
fn compare(url: &str, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new()?;
    let mut stream = client.open(url)?;
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let (mut ours, mut theirs) = (vec![0; 1 << 16], vec![0; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = stream.read(&mut ours)?;
        if n == 0 {
            let rest = file.read(&mut theirs)?;
            if rest != 0 {
                return Err(format!("{path} is longer than the stream ({offset} bytes)").into());
            }
            println!("{offset} bytes read through std::io::Read: the same as {path}");
            return Ok(());
        }
        file.read_exact(&mut theirs[..n])?;
        if ours[..n] != theirs[..n] {
            return Err(format!("{path} differs from the stream near byte {offset}").into());
        }
        offset += n as u64;
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}
