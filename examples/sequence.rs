//! Lists the files of a file sequence (`-seq`) as they arrive: each file is
//! streamed through a SHA-256 digest, so even a huge file costs no memory.
//!
//!     cargo run --example sequence -- http://127.0.0.1:8000/photos-seq.parts
//!
//! Prints one line per file: its number, its length and its SHA-256.

use partfetch::sequence::SequenceFiles;
use partfetch::sha256::{to_hex, Sha256};
use partfetch::{ByteSource, Client};

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: sequence URL");
        std::process::exit(2);
    };
    if let Err(err) = run(&url) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(url: &str) -> Result<(), partfetch::Error> {
    let client = Client::new()?;
    let mut files = SequenceFiles::new(client.open(url)?);
    while let Some(mut file) = files.next_file()? {
        let (index, length) = (file.index(), file.length());
        let mut digest = Sha256::new();
        while let Some(chunk) = file.next_chunk()? {
            digest.update(chunk);
        }
        println!(
            "file {index}: {length} bytes, sha256 {}",
            to_hex(&digest.finish())
        );
    }
    Ok(())
}
