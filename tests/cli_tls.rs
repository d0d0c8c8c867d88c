//! The `partfetch` command over HTTPS, black-box: certificates made at test
//! time by `support::TestPki` (or by `openssl`, as people make them),
//! trusted through `--cacert` or `--pinnedpubkey`.
#![cfg(feature = "tls")]

mod support;

use std::process::Command;
use std::sync::Arc;

use support::cli::{self, Outcome};
use support::{
    test_data, OpensslCertificate, Reply, Request, Server, TempDir, TestPki, TunnelProxy,
};

fn cacert(pki: &TestPki) -> String {
    pki.ca_pem_path()
        .to_str()
        .expect("utf-8 temp path")
        .to_owned()
}

#[test]
fn https_download_succeeds_with_cacert() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("over TLS"));
    let outcome: Outcome = cli::run(&[
        "--cacert",
        &cacert(&pki),
        &server.url_on("localhost", "/s"),
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"over TLS");
    let r: Request = server.last_request();
    assert_eq!(
        r.header("host"),
        Some(format!("localhost:{}", server.port()).as_str())
    );
}

#[test]
fn https_to_an_ip_address_in_the_certificate_succeeds() {
    let pki: TestPki = TestPki::for_names(&["localhost", "127.0.0.1"]);
    let server: Server = Server::https(&pki, |_| Reply::ok("by address"));
    let outcome: Outcome = cli::run(&["--cacert", &cacert(&pki), &server.url("/s"), "-"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"by address");
}

#[test]
fn https_download_to_file_saves_it() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("saved over TLS"));
    let dir: TempDir = TempDir::new("tls-out");
    let out: std::path::PathBuf = dir.join("f.txt");
    let outcome: Outcome = cli::run(&[
        "--cacert",
        &cacert(&pki),
        &server.url_on("localhost", "/f.txt"),
        out.to_str().unwrap(),
    ]);
    outcome.assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), b"saved over TLS");
}

#[test]
fn untrusted_certificate_exits_5_naming_the_url() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("must not be read"));
    let url: String = server.url_on("localhost", "/s");
    let outcome: Outcome = cli::run(&[&url, "-"]);
    outcome.assert_code(5).assert_error_mentions(&[
        &url,
        "not signed by a trusted authority",
        "--cacert",
    ]);
    assert!(outcome.stdout.is_empty());
    assert!(
        server.requests().is_empty(),
        "no request is sent over an unverified connection"
    );
}

#[test]
fn wrong_host_name_exits_5() {
    // The certificate names localhost only; the URL names 127.0.0.1.
    let pki: TestPki = TestPki::for_names(&["localhost"]);
    let server: Server = Server::https(&pki, |_| Reply::ok("must not be read"));
    let url: String = server.url("/s");
    let outcome: Outcome = cli::run(&["--cacert", &cacert(&pki), &url, "-"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&url, "it is for localhost, not 127.0.0.1"]);
    assert!(outcome.stdout.is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn https_to_a_plain_http_port_says_so() {
    // A plain HTTP server answers the TLS greeting with a 400, as nginx
    // does, and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let _ = conn.read(&mut [0u8; 4096]);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let url = format!("https://127.0.0.1:{port}/s");
    let outcome: Outcome = cli::run(&[&url, "-"]);
    server.join().unwrap();
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&url, "did not answer in TLS"]);
}

#[test]
fn chunked_and_close_delimited_bodies_over_tls() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |r| match r.path() {
        "/chunked" => Reply::chunked(vec!["tls ", "chunked"]),
        _ => Reply::close_delimited("tls closed"),
    });
    let ca: String = cacert(&pki);
    let outcome: Outcome = cli::run(&[
        "--cacert",
        &ca,
        &server.url_on("localhost", "/chunked"),
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"tls chunked");
    let outcome: Outcome = cli::run(&["--cacert", &ca, &server.url_on("localhost", "/close"), "-"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"tls closed");
}

#[test]
fn large_https_body_is_byte_identical() {
    let pki: TestPki = TestPki::new();
    let data: Arc<Vec<u8>> = Arc::new(test_data(8 << 20, 5));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::https(&pki, move |_| Reply::ok(served.to_vec()));
    let outcome: Outcome = cli::run(&[
        "--cacert",
        &cacert(&pki),
        &server.url_on("localhost", "/big"),
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout.len(), data.len());
    assert!(outcome.stdout == *data, "the body differs");
}

#[test]
fn redirect_from_http_to_https_drops_authorization_and_cookie() {
    let pki: TestPki = TestPki::new();
    let secure: Server = Server::https(&pki, |_| Reply::ok("secure side"));
    let location: String = secure.url_on("localhost", "/end");
    let plain: Server = Server::start(move |_| Reply::redirect(302, &location));
    let url: String = format!("http://user:pw@localhost:{}/start", plain.port());
    let outcome: Outcome = cli::run(&["--cacert", &cacert(&pki), "-H", "Cookie: c=1", &url, "-"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"secure side");
    assert_eq!(
        plain.last_request().header("authorization"),
        Some("Basic dXNlcjpwdw==")
    );
    let r: Request = secure.last_request();
    assert_eq!(
        r.header("authorization"),
        None,
        "Authorization sent after a scheme change"
    );
    assert_eq!(
        r.header("cookie"),
        None,
        "Cookie sent after a scheme change"
    );
}

#[test]
fn https_through_proxy_uses_connect() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("tunnelled"));
    let proxy: TunnelProxy = TunnelProxy::start();
    let url: String = server.url_on("localhost", "/t");
    let outcome: Outcome = cli::run(&[
        "--proxy",
        &proxy.url(),
        "--cacert",
        &cacert(&pki),
        &url,
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"tunnelled");
    let connects: Vec<Request> = proxy.requests();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].method, "CONNECT");
    assert_eq!(connects[0].target, format!("localhost:{}", server.port()));
    assert_eq!(
        server.last_request().target,
        "/t",
        "origin-form inside the tunnel"
    );
}

#[test]
fn https_proxy_variable_is_used_with_connect() {
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("tunnelled by env"));
    let proxy: TunnelProxy = TunnelProxy::start();
    let mut cmd: Command = cli::command();
    cmd.env("https_proxy", proxy.url()).args([
        "--cacert",
        &cacert(&pki),
        &server.url_on("localhost", "/t"),
        "-",
    ]);
    let outcome: Outcome = cli::run_command(cmd);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"tunnelled by env");
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(
        proxy.requests()[0].target,
        format!("localhost:{}", server.port())
    );
}

#[test]
fn an_unusable_cacert_file_is_named_with_the_option_that_gave_it() {
    let missing = "/nonexistent/partfetch-test-ca.pem";
    let outcome: Outcome = cli::run(&["--cacert", missing, "https://127.0.0.1:9/f", "-"]);
    outcome
        .assert_code(7)
        .assert_error_mentions(&["CA file", missing, "--cacert"]);
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn a_self_signed_certificate_made_with_openssl_is_trusted_through_cacert() {
    let dir: TempDir = TempDir::new("tls-openssl");
    let Some(made) = OpensslCertificate::new(dir.path(), "site", "DNS:localhost") else {
        return;
    };
    let pki: TestPki = TestPki::from_pem_files(&made.cert, &made.key);
    let server: Server = Server::https(&pki, |_| Reply::ok("self-signed"));
    let url: String = server.url_on("localhost", "/s");
    for option in ["--cacert", "--ca-certificate"] {
        let outcome: Outcome = cli::run(&[option, path(&made.cert), &url, "-"]);
        outcome.assert_quiet_success();
        assert_eq!(outcome.stdout, b"self-signed");
    }
    // Its name is still checked: it says DNS:localhost only.
    let by_address: String = server.url("/s");
    let outcome: Outcome = cli::run(&["--cacert", path(&made.cert), &by_address, "-"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&by_address, "it is for localhost, not 127.0.0.1"]);
    assert!(outcome.stdout.is_empty());
    assert_eq!(
        server.requests().len(),
        2,
        "none over the refused connection"
    );
}

#[test]
fn a_self_signed_certificate_is_trusted_only_by_a_cacert_file_holding_it() {
    let dir: TempDir = TempDir::new("tls-openssl-other");
    let (Some(served), Some(other)) = (
        OpensslCertificate::new(dir.path(), "served", "DNS:localhost"),
        OpensslCertificate::new(dir.path(), "other", "DNS:localhost"),
    ) else {
        return;
    };
    let pki: TestPki = TestPki::from_pem_files(&served.cert, &served.key);
    let server: Server = Server::https(&pki, |_| Reply::ok("secret"));
    let url: String = server.url_on("localhost", "/s");
    let outcome: Outcome = cli::run(&["--cacert", path(&other.cert), &url, "-"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&url, "a CA's certificate, not a server's"]);
    assert!(outcome.stdout.is_empty());
    assert!(server.requests().is_empty());
    // Both files: the one holding it is enough.
    let outcome: Outcome = cli::run(&[
        "--cacert",
        path(&other.cert),
        "--cacert",
        path(&served.cert),
        &url,
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"secret");
}

#[test]
fn a_self_signed_certificate_in_the_cacert_file_is_trusted_only_within_its_dates() {
    let current: TestPki = TestPki::self_signed_between(&["localhost"], (2020, 1, 1), (2099, 1, 1));
    let server: Server = Server::https(&current, |_| Reply::ok("in date"));
    let outcome: Outcome = cli::run(&[
        "--cacert",
        &cacert(&current),
        &server.url_on("localhost", "/s"),
        "-",
    ]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"in date");

    for (not_before, not_after, refusal) in [
        (
            (2020, 1, 1),
            (2021, 1, 1),
            "it expired on Fri, 01 Jan 2021 00:00:00 GMT",
        ),
        (
            (2098, 1, 1),
            (2099, 1, 1),
            "it is not valid before Wed, 01 Jan 2098 00:00:00 GMT",
        ),
    ] {
        let pki: TestPki = TestPki::self_signed_between(&["localhost"], not_before, not_after);
        let server: Server = Server::https(&pki, |_| Reply::ok("must not be read"));
        let url: String = server.url_on("localhost", "/s");
        let outcome: Outcome = cli::run(&["--cacert", &cacert(&pki), &url, "-"]);
        outcome
            .assert_code(5)
            .assert_error_mentions(&[&url, refusal]);
        assert!(server.requests().is_empty());
    }
}

#[test]
fn a_server_without_the_key_of_a_trusted_self_signed_certificate_is_refused() {
    let pki: TestPki = TestPki::impostor();
    let server: Server = Server::https(&pki, |_| Reply::ok("must not be read"));
    let url: String = server.url_on("localhost", "/s");
    let outcome: Outcome = cli::run(&["--cacert", &cacert(&pki), &url, "-"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&url, "not signed with its certificate's key"]);
    assert!(server.requests().is_empty());
}

#[test]
fn a_pinned_public_key_is_trusted_without_a_ca_and_its_name_still_checked() {
    let dir: TempDir = TempDir::new("tls-pin");
    let Some(made) = OpensslCertificate::new(dir.path(), "site", "DNS:localhost") else {
        return;
    };
    let (Some(pin), Some(key_file)) = (made.pin(), made.public_key_pem()) else {
        return;
    };
    let pki: TestPki = TestPki::from_pem_files(&made.cert, &made.key);
    let server: Server = Server::https(&pki, |_| Reply::ok("pinned"));
    let url: String = server.url_on("localhost", "/s");
    let another: String = format!("sha256//{}=", "A".repeat(43));
    for pins in [
        pin.clone(),
        format!("{another};{pin}"),
        path(&key_file).to_owned(),
    ] {
        let outcome: Outcome = cli::run(&["--pinnedpubkey", &pins, &url, "-"]);
        outcome.assert_quiet_success();
        assert_eq!(outcome.stdout, b"pinned", "{pins}");
    }
    let by_address: String = server.url("/s");
    let outcome: Outcome = cli::run(&["--pinnedpubkey", &pin, &by_address, "-"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&by_address, "it is for localhost, not 127.0.0.1"]);
}

#[test]
fn a_server_whose_key_is_not_pinned_is_refused_naming_the_pin() {
    let dir: TempDir = TempDir::new("tls-pin-other");
    let Some(other) = OpensslCertificate::new(dir.path(), "other", "DNS:localhost") else {
        return;
    };
    let Some(pin) = other.pin() else { return };
    // The chain is good: the pin is required all the same.
    let pki: TestPki = TestPki::new();
    let server: Server = Server::https(&pki, |_| Reply::ok("must not be read"));
    let url: String = server.url_on("localhost", "/s");
    let outcome: Outcome =
        cli::run(&["--cacert", &cacert(&pki), "--pinnedpubkey", &pin, &url, "-"]);
    outcome.assert_code(5).assert_error_mentions(&[
        &url,
        "its public key is sha256//",
        &format!("not the pinned {pin}"),
    ]);
    assert!(outcome.stdout.is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn a_malformed_pin_is_refused_naming_it() {
    let url = "https://127.0.0.1:9/f";
    for (value, named) in [
        ("sha256//abc", "sha256//abc"),
        ("sha256//abc;sha256//def", "sha256//abc"),
    ] {
        let outcome: Outcome = cli::run(&["--pinnedpubkey", value, url, "-"]);
        outcome
            .assert_code(2)
            .assert_error_mentions(&[named, "--pinnedpubkey", "sha256//"]);
    }
    let missing = "/nonexistent/partfetch-test-key.pem";
    let outcome: Outcome = cli::run(&["--pinnedpubkey", missing, url, "-"]);
    outcome
        .assert_code(7)
        .assert_error_mentions(&["public key file", missing, "--pinnedpubkey"]);
}
