//! Interoperability with a real server: nginx on 127.0.0.1.
//!
//! In scope: what the in-process test server cannot vouch for — that
//! partfetch and a server it did not write agree on the protocol. A 64 MiB
//! file comes through byte for byte over HTTP and HTTPS (the `partfetch`
//! binary, a CA made here with `rcgen`, `--cacert`); a `Range` request gets
//! its 206 and exactly its bytes; two requests on one [`Client`] share one
//! connection, as nginx's own access log (`$connection`,
//! `$connection_requests`) tells; a finished download run again is found
//! complete by nginx's answer to `If-Range` with its `Last-Modified`. With
//! `--compressed` (feature `gzip`), a text file nginx gzips on the fly
//! travels in under half its size, as its log's `$body_bytes_sent` tells,
//! and is saved byte for byte.
//!
//! Each test starts its own nginx (`daemon off; master_process off;`, a
//! single process that is this test's child) with a generated configuration
//! on free ports, in a fresh directory under the system temporary directory,
//! and kills it and removes the directory when dropped.
//!
//! When nginx is missing or cannot start, a test fails if the environment
//! variable `CI` is set, and otherwise prints a notice and passes, so that
//! `cargo test` works on a machine without nginx (`support::require_tool`
//! and `support::skip`). `NGINX=/path/to/nginx` chooses the binary.

mod support;

use std::ffi::OsString;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use partfetch::http::Request;
use partfetch::{ByteSource, Client, Url};

/// The size of the file the binary downloads: large enough for many reads,
/// many TLS records and many sendfile calls, small enough for a debug build.
const BIG_FILE: usize = 64 * 1024 * 1024;

/// How long one run of the binary may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// How long nginx may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How many times a start is tried again when another process took a port
/// between our probe and nginx's bind.
const START_ATTEMPTS: usize = 5;

// ---------------------------------------------------------------- tests

#[test]
fn big_file_over_http_arrives_byte_for_byte() {
    let dir = TempDir::new("http");
    let data = dir.write_data("big.bin", BIG_FILE, 0x9E37_79B9_7F4A_7C15);
    let Some(nginx) = start_or_skip(&dir, None) else {
        return;
    };
    let out = dir.path().join("out.bin");
    let url = nginx.http_url("/www/big.bin");
    run_partfetch(&["-q".into(), url.into(), out.clone().into()]);
    assert_same_file(&data, &out);
}

#[test]
fn a_finished_download_run_again_is_complete_by_nginxs_answer_to_if_range() {
    let dir = TempDir::new("complete");
    let data = dir.write_data("f.bin", 5 << 20, 0x5851_F42D_4C95_7F2D);
    let Some(nginx) = start_or_skip(&dir, None) else {
        return;
    };
    let out = dir.path().join("out.bin");
    let url = nginx.http_url("/www/f.bin");
    run_partfetch(&[url.clone().into(), out.clone().into()]);
    assert_same_file(&data, &out);
    let said = run_partfetch(&[url.clone().into(), out.clone().into()]);
    assert_eq!(said, format!("partfetch: {} is complete\n", out.display()));
    assert_same_file(&data, &out);
    // The file on the server changed (its date): downloaded again.
    let newer = std::time::SystemTime::now() + Duration::from_secs(3600);
    File::options()
        .write(true)
        .open(&data)
        .and_then(|f| f.set_modified(newer))
        .expect("change the served file's date");
    let said = run_partfetch(&[url.into(), out.clone().into()]);
    assert!(said.contains(" done: 5.0 MiB in "), "{said}");
    assert_same_file(&data, &out);
}

#[cfg(feature = "tls")]
#[test]
fn big_file_over_https_arrives_byte_for_byte() {
    let dir = TempDir::new("https");
    let data = dir.write_data("big.bin", BIG_FILE, 0xD1B5_4A32_D192_ED03);
    let pki = pki::Pki::write(dir.path());
    let Some(nginx) = start_or_skip(&dir, Some(&pki)) else {
        return;
    };
    let out = dir.path().join("out.bin");
    let url = nginx.https_url("/www/big.bin");
    run_partfetch(&[
        "-q".into(),
        "--cacert".into(),
        pki.ca_pem.clone().into(),
        url.into(),
        out.clone().into(),
    ]);
    assert_same_file(&data, &out);
}

#[test]
fn range_request_gets_206_and_exactly_its_bytes() {
    let dir = TempDir::new("range");
    let len = 4 * 1024 * 1024;
    let data = dir.write_data("file.bin", len, 0x2545_F491_4F6C_DD1D);
    let Some(nginx) = start_or_skip(&dir, None) else {
        return;
    };
    let expected = fs::read(&data).expect("read the served file");
    let (start, end) = (1_000_003_u64, 3_000_000_u64);
    let url = Url::parse(&nginx.http_url("/www/file.bin")).expect("URL");

    let client = client();
    let response = client
        .send(&Request::get(url).range(start, Some(end)))
        .expect("range request");
    assert_eq!(response.status(), 206, "nginx answers a range with 206");
    assert_eq!(
        response.content_range(),
        Some((start, end, Some(len as u64))),
        "Content-Range: {:?}",
        response.header("content-range")
    );
    let body = read_to_end(response.into_body());
    assert_eq!(body.len() as u64, end - start + 1, "the range's length");
    assert!(
        body == expected[start as usize..=end as usize],
        "the body is bytes {start}-{end} of the file"
    );
}

#[test]
fn two_gets_on_one_client_share_one_connection() {
    let dir = TempDir::new("keepalive");
    // Several reads' worth, so the body is read in more than one chunk.
    let data = dir.write_data("page.bin", 300_000, 0xA076_1D64_78BD_642F);
    let Some(nginx) = start_or_skip(&dir, None) else {
        return;
    };
    let expected = fs::read(&data).expect("read the served file");
    let url = Url::parse(&nginx.http_url("/www/page.bin")).expect("URL");

    let client = client();
    for n in 1..=2 {
        let response = client.get(&url).unwrap_or_else(|e| panic!("GET {n}: {e}"));
        assert_eq!(response.status(), 200);
        let body = read_to_end(response.into_body());
        assert!(body == expected, "GET {n}: the body is the file");
    }

    let lines = nginx.wait_for_log_lines(2);
    let conns: Vec<(u64, u64)> = lines
        .iter()
        .map(|line| {
            let mut fields = line.split(' ');
            let mut next = || -> u64 {
                fields
                    .next()
                    .and_then(|f| f.parse().ok())
                    .unwrap_or_else(|| panic!("access log line {line:?}"))
            };
            (next(), next())
        })
        .collect();
    assert_eq!(
        conns[0].0,
        conns[1].0,
        "both requests on one connection; nginx's access log:\n{}",
        lines.join("\n")
    );
    assert_eq!(
        (conns[0].1, conns[1].1),
        (1, 2),
        "the first and second request of that connection; nginx's access log:\n{}",
        lines.join("\n")
    );
}

#[cfg(feature = "gzip")]
#[test]
fn a_text_file_asked_for_compressed_travels_in_under_half_its_size() {
    let dir = TempDir::new("gzip");
    let len = 4 * 1024 * 1024;
    let www = dir.path().join("www");
    fs::create_dir_all(&www).expect("create www");
    let text: Vec<u8> = (0..)
        .flat_map(|i: u64| {
            let word = ["ledger", "entry", "amount", "balance", "note"][(i % 5) as usize];
            format!("{i:08} {word} {} {}\n", i * 7919 % 100_003, i % 97).into_bytes()
        })
        .take(len)
        .collect();
    let served = www.join("notes.txt");
    fs::write(&served, &text).expect("write the text file");
    let Some(nginx) = start_or_skip(&dir, None) else {
        return;
    };
    let url = nginx.http_url("/www/notes.txt");
    let compressed = dir.path().join("compressed.txt");
    run_partfetch(&[
        "-q".into(),
        "--compressed".into(),
        url.clone().into(),
        compressed.clone().into(),
    ]);
    assert_same_file(&served, &compressed);
    let stored = dir.path().join("stored.txt");
    run_partfetch(&["-q".into(), url.into(), stored.clone().into()]);
    assert_same_file(&served, &stored);

    // `... $status $body_bytes_sent $http_accept_encoding`: one request
    // for the compressed download, then those of the stored one (pieces).
    let lines = nginx.wait_for_log_lines(2);
    let sent = |line: &str| -> (u64, String) {
        let mut fields = line.rsplit(' ');
        let coding = fields.next().unwrap_or_default().to_owned();
        let bytes = fields.next().and_then(|f| f.parse().ok());
        (
            bytes.unwrap_or_else(|| panic!("access log line {line:?}")),
            coding,
        )
    };
    let (gzipped, asked) = sent(&lines[0]);
    assert_eq!(asked, "gzip", "{lines:?}");
    assert!(
        gzipped < len as u64 / 2,
        "{gzipped} bytes sent for a file of {len}; nginx's access log:\n{}",
        lines.join("\n")
    );
    for line in &lines[1..] {
        assert_eq!(sent(line).1, "identity", "{lines:?}");
    }
}

// ---------------------------------------------------------------- helpers

/// A client that ignores proxy variables: the tests talk to 127.0.0.1 only.
fn client() -> Client {
    Client::builder().no_env_proxy().build().expect("client")
}

/// Reads a body to its end (which gives its connection back to the pool).
fn read_to_end(mut body: impl ByteSource) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = body.next_chunk().expect("read the body") {
        all.extend_from_slice(chunk);
    }
    all
}

/// Runs the `partfetch` binary with `args` and no proxy variables; panics
/// with its standard error unless it succeeds within [`RUN_DEADLINE`].
/// Runs the binary with `args`; panics unless it succeeds; returns what it
/// wrote to standard error.
fn run_partfetch(args: &[OsString]) -> String {
    let errors = TempDir::new("stderr");
    let stderr_path = errors.path().join("stderr");
    let stderr = File::create(&stderr_path).expect("create stderr file");
    // PARTFETCH_BIN picks another build of the same source, as in the
    // other CLI tests.
    let binary = std::env::var("PARTFETCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_partfetch").to_owned());
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ] {
        command.env_remove(var);
    }
    let mut child = command.spawn().expect("start partfetch");
    let status = wait_with_deadline(&mut child, RUN_DEADLINE);
    let said = fs::read_to_string(&stderr_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => said,
        Some(status) => panic!("partfetch {args:?} failed ({status}); stderr:\n{said}"),
        None => panic!("partfetch {args:?} took more than {RUN_DEADLINE:?}; stderr:\n{said}"),
    }
}

/// Waits for `child`; kills it and returns `None` after `deadline`.
fn wait_with_deadline(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Panics unless the files at `expected` and `got` hold the same bytes,
/// naming the first offset where they differ.
fn assert_same_file(expected: &Path, got: &Path) {
    if let Err(why) = support::compare_files(expected, got) {
        panic!("the downloaded file: {why}");
    }
}

/// `len` bytes from xorshift64 seeded with `seed`: deterministic, and not
/// compressible or periodic enough to hide a misplaced block.
fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// A directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory, unique across tests and processes.
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "partfetch-nginx-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes [`test_data`] to `www/NAME`, the directory nginx serves as
    /// `/www/`; returns the file's path.
    fn write_data(&self, name: &str, len: usize, seed: u64) -> PathBuf {
        let www = self.0.join("www");
        fs::create_dir_all(&www).expect("create www");
        let path = www.join(name);
        fs::write(&path, test_data(len, seed)).expect("write test data");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- nginx

/// An nginx process serving a [`TempDir`] (its `www/` as `/www/`), killed
/// on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    http_port: u16,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    https_port: Option<u16>,
}

/// Certificate and key files for nginx's HTTPS server.
trait ServerCert {
    fn cert_pem(&self) -> &Path;
    fn key_pem(&self) -> &Path;
}

/// Starts nginx in `dir`, or says why it cannot (`support::skip`: a
/// failure with `CI` set; otherwise a notice, and the test returns early).
fn start_or_skip(dir: &TempDir, tls: Option<&dyn ServerCert>) -> Option<Nginx> {
    let binary = support::require_tool("nginx")?;
    match Nginx::start(&binary, dir.path(), tls) {
        Ok(nginx) => Some(nginx),
        Err(why) => support::skip(format!("nginx is needed, but {why}")),
    }
}

impl Nginx {
    fn start(binary: &Path, dir: &Path, tls: Option<&dyn ServerCert>) -> Result<Nginx, String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let http_port = free_port()?;
            let https_port = match tls {
                Some(_) => Some(loop {
                    let port = free_port()?;
                    if port != http_port {
                        break port;
                    }
                }),
                None => None,
            };
            let conf = config(binary, dir, http_port, https_port.zip(tls));
            let conf_path = dir.join("nginx.conf");
            fs::write(&conf_path, conf).map_err(|e| format!("cannot write nginx.conf: {e}"))?;
            let error_log = dir.join("error.log");
            let _ = fs::remove_file(dir.join("nginx.pid"));
            let _ = fs::remove_file(&error_log);
            let child = Command::new(binary)
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(&error_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            let mut nginx = Nginx {
                child,
                dir: dir.to_owned(),
                http_port,
                https_port,
            };
            match nginx.wait_until_listening() {
                Ok(()) => return Ok(nginx),
                Err(log) if log.contains("Address already in use") => last_error = log,
                Err(log) => return Err(format!("nginx did not start; its error log:\n{log}")),
            }
        }
        Err(format!(
            "nginx found no free port in {START_ATTEMPTS} attempts; its error log:\n{last_error}"
        ))
    }

    /// Waits until nginx writes its pid file, which it does once its
    /// sockets listen. On failure, the error log.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let pid_file = self.dir.join("nginx.pid");
        loop {
            if fs::metadata(&pid_file)
                .map(|m| m.len() > 0)
                .unwrap_or(false)
            {
                return Ok(());
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > START_DEADLINE {
                let log = fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(match exited {
                    Some(status) => format!("{log}(nginx exited: {status})"),
                    None => format!("{log}(no pid file after {START_DEADLINE:?})"),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    #[cfg(feature = "tls")]
    fn https_url(&self, path: &str) -> String {
        let port = self.https_port.expect("started with a certificate");
        format!("https://127.0.0.1:{port}{path}")
    }

    /// The access log once it has at least `n` lines. nginx logs a request
    /// after sending its last byte, so a client may finish reading first.
    fn wait_for_log_lines(&self, n: usize) -> Vec<String> {
        let path = self.dir.join("access.log");
        let started = Instant::now();
        loop {
            let log = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<String> = log.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx's access log has {} lines, not {n}:\n{log}",
                lines.len()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A single process (master_process off): killing it stops nginx.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 with no listener right now (bound, then released).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("no local address: {e}"))
}

/// The configuration: one process, everything inside `dir`, `dir/www` served
/// as `/www/`, `.txt` files gzipped for a client that accepts it, and an
/// access log line `$connection $connection_requests "$request" $status
/// $body_bytes_sent $http_accept_encoding` per request.
fn config(
    binary: &Path,
    dir: &Path,
    http_port: u16,
    https: Option<(u16, &dyn ServerCert)>,
) -> String {
    let d = dir.display();
    let https_server = match https {
        Some((port, cert)) => format!(
            "    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {};
        ssl_certificate_key {};
        root {d};
    }}
",
            cert.cert_pem().display(),
            cert.key_pem().display()
        ),
        None => String::new(),
    };
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 64;
}}
http {{
    default_type application/octet-stream;
    types {{
        text/plain txt;
    }}
    gzip on;
    gzip_types text/plain;
    log_format conns '$connection $connection_requests \"$request\" $status $body_bytes_sent $http_accept_encoding';
    access_log {d}/access.log conns;
{temp_paths}    sendfile on;
    keepalive_timeout 60;
    server {{
        listen 127.0.0.1:{http_port};
        root {d};
    }}
{https_server}}}
",
        temp_paths = temp_paths(binary, dir),
    )
}

/// Temp-path directives inside `dir` for the modules this nginx was built
/// with (nginx-light lacks uwsgi and scgi; naming a missing module's
/// directive is a configuration error), so nginx needs nothing in /var.
fn temp_paths(binary: &Path, dir: &Path) -> String {
    static BUILT: OnceLock<String> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        Command::new(binary)
            .arg("-V")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
            .unwrap_or_default()
    });
    let d = dir.display();
    let mut lines = format!("    client_body_temp_path {d}/tmp-client_body;\n");
    for module in ["proxy", "fastcgi", "uwsgi", "scgi"] {
        if !built.contains(&format!("--without-http_{module}_module")) {
            lines.push_str(&format!("    {module}_temp_path {d}/tmp-{module};\n"));
        }
    }
    lines
}

// ---------------------------------------------------------------- certificates

#[cfg(feature = "tls")]
mod pki {
    //! A test CA and a server certificate it signs for 127.0.0.1 and
    //! localhost, written as PEM files: the CA for `--cacert`, the rest for
    //! nginx.

    use std::fs;
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::{Path, PathBuf};

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };

    pub struct Pki {
        pub ca_pem: PathBuf,
        cert_pem: PathBuf,
        key_pem: PathBuf,
    }

    impl Pki {
        /// Makes the certificates and writes `ca.pem`, `server.pem` and
        /// `server.key` into `dir`.
        pub fn write(dir: &Path) -> Pki {
            let ca_key = KeyPair::generate().expect("CA key");
            let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name
                .push(DnType::CommonName, "partfetch nginx test CA");
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");

            let key = KeyPair::generate().expect("server key");
            let mut server = CertificateParams::new(Vec::<String>::new()).expect("server params");
            server
                .distinguished_name
                .push(DnType::CommonName, "localhost");
            server.subject_alt_names = vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::DnsName("localhost".try_into().expect("DNS name")),
            ];
            let cert = server
                .signed_by(&key, &ca_cert, &ca_key)
                .expect("server certificate");

            let pki = Pki {
                ca_pem: dir.join("ca.pem"),
                cert_pem: dir.join("server.pem"),
                key_pem: dir.join("server.key"),
            };
            fs::write(&pki.ca_pem, ca_cert.pem()).expect("write ca.pem");
            fs::write(&pki.cert_pem, cert.pem()).expect("write server.pem");
            fs::write(&pki.key_pem, key.serialize_pem()).expect("write server.key");
            pki
        }
    }

    impl super::ServerCert for Pki {
        fn cert_pem(&self) -> &Path {
            &self.cert_pem
        }
        fn key_pem(&self) -> &Path {
            &self.key_pem
        }
    }
}
