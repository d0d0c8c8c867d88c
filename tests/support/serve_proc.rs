//! `partfetch serve` as a child process: started on a port the system
//! picks (read from its first line on standard error), its request log
//! collected, killed (SIGKILL, as a crashed machine) on demand or on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::cli;

/// A running `partfetch serve`.
pub struct ServeProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Serves `dir` on 127.0.0.1 with `extra` options.
    pub fn start(dir: &Path, extra: &[&str]) -> ServeProcess {
        let mut cmd = cli::command();
        cmd.arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn partfetch serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("first line of serve");
        let addr = first
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("serve did not say where it listens: {first:?}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        ServeProcess { child, addr, log }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT/` + `path` (without its leading slash).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The request log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has at least `n` lines (at most 5 s).
    pub fn wait_for_log(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.len() >= n || start.elapsed() > Duration::from_secs(5) {
                return log;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server at once.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `request` raw on a fresh connection and reads until the server
    /// closes it or `wait` passes.
    pub fn raw(&self, request: &[u8], wait: Duration) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).expect("connect to serve");
        stream.set_read_timeout(Some(wait)).unwrap();
        stream.write_all(request).expect("send request");
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
