//! Streams a URL (a plain file or a `.parts` manifest) to standard output,
//! reporting on stderr how many bytes and parts went by.
//!
//!     cargo run --example stream -- http://127.0.0.1:8000/movie.parts > movie
//!
//! The bytes go out while the download runs: nothing waits for the end.

use std::io::Write;

use partfetch::{ByteSource, Client};

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: stream URL");
        std::process::exit(2);
    };
    if let Err(err) = run(&url) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new()?;
    let mut stream = client.open(url)?;
    let mut out = std::io::stdout().lock();
    let mut total = 0u64;
    while let Some(chunk) = stream.next_chunk()? {
        out.write_all(chunk)?;
        total += chunk.len() as u64;
    }
    out.flush()?;
    match stream.parts_done() {
        Some(parts) => eprintln!("{total} bytes from {parts} parts"),
        None => eprintln!("{total} bytes"),
    }
    Ok(())
}
