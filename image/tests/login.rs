//! Logins against a real registry (htpasswd and the token flow), on a
//! terminal and with --password-stdin, and the pushes and pulls they allow.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use common::push::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn login_with_htpasswd_then_push_pull_run_and_logout() {
    let reg = Registry::with_basic_auth();
    let img = RtImage::new();
    let mut rt = Rt::new();
    let work = tmpdir("rt-image-push-auth.");
    let cfg = work.path().join("docker");
    base_image(&img, work.path());
    commit_change(&img, &mut rt, work.path(), "auth:v1", "pushed-with-login");
    let dest = format!("{}/me/auth:v1", reg.addr);
    img.ok(&["tag", "auth:v1", &dest]);

    // No credentials: the push is refused, the store stays as it was.
    let before = snapshot(img.root());
    let err = fails(rti(&img, Some(&cfg), &["push", "--plain-http", &dest]));
    assert!(
        err.contains("not authorized (HTTP 401") && err.contains("rt-image login"),
        "{err}"
    );
    assert_eq!(snapshot(img.root()), before);

    // A wrong password: refused, nothing stored.
    let err = fails(login(&img, &cfg, &reg.addr, "rt", "wrong"));
    assert!(
        err.contains(&format!("login to {} refused", reg.addr)),
        "{err}"
    );
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(!cfg.join("config.json").exists());

    let out = ok(login(&img, &cfg, &reg.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");
    let file = cfg.join("config.json");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode("rt:pw");
    assert_eq!(stored["auths"][&reg.addr]["auth"], json!(token), "{stored}");

    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Pushed"), 3, "{out}");
    let digest = pushed_digest(&out);
    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Layer already exists"), 3, "{out}");

    empty_store(&img);
    let (stdout, pulled) = pull_and_run(&img, Some(&cfg), &mut rt, work.path(), &dest);
    assert_eq!(stdout, "pushed-with-login\n");
    assert_eq!(pulled, digest);

    // Credentials that were good once and no longer are: 401 after login.
    let mut stale = stored.clone();
    stale["auths"][&reg.addr]["auth"] =
        json!(base64::engine::general_purpose::STANDARD.encode("rt:changed"));
    let stale_dir = work.path().join("stale");
    fs::create_dir(&stale_dir).unwrap();
    fs::write(stale_dir.join("config.json"), stale.to_string()).unwrap();
    let again = format!("{}/me/auth:v2", reg.addr);
    img.ok(&["tag", &dest, &again]);
    let before = snapshot(img.root());
    let err = fails(rti(
        &img,
        Some(&stale_dir),
        &["push", "--plain-http", &again],
    ));
    assert!(
        err.contains("not authorized (HTTP 401") && err.contains("with the credentials"),
        "{err}"
    );
    assert_eq!(snapshot(img.root()), before);

    let out = ok(rti(&img, Some(&cfg), &["logout", &reg.addr]), "logout");
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", reg.addr)
    );
    let stored: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["auths"], json!({}), "{stored}");
    let out = ok(rti(&img, Some(&cfg), &["logout", &reg.addr]), "logout");
    assert_eq!(out, format!("Not logged in to {}\n", reg.addr));
    fails(rti(&img, Some(&cfg), &["push", "--plain-http", &again]));
}

#[test]
fn login_token_flow() {
    // A registry whose /v2/ asks for a bearer token from its realm, which
    // hands one out for rt:pw only.
    let fake = Proxy::start(None);
    let realm = format!("http://{}/token", fake.addr);
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rt:pw")
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    fake.set(move |r| {
        log.lock().unwrap().push(format!("{} {}", r.method, r.path));
        let auth = r.header("authorization").unwrap_or("").to_string();
        if r.path == "/v2/" {
            if auth == "Bearer tok-123" {
                return Action::Respond(200, "{}".into());
            }
            let challenge = format!("Bearer realm=\"{realm}\",service=\"fake\"");
            return Action::Raw(format!(
                "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: {challenge}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ));
        }
        if r.path.starts_with("/token?") {
            if auth == good {
                return Action::Respond(200, r#"{"token":"tok-123"}"#.into());
            }
            return Action::Respond(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            );
        }
        Action::Respond(404, "{}".into())
    });
    let img = RtImage::new();
    let work = tmpdir("rt-image-token.");
    let cfg = work.path().join("docker");

    let err = fails(login(&img, &cfg, &fake.addr, "rt", "nope"));
    assert!(
        err.contains(
            "token service: wrong user name or password (HTTP 401: UNAUTHORIZED: bad credentials)"
        ),
        "{err}"
    );
    assert!(!cfg.join("config.json").exists());

    let out = ok(login(&img, &cfg, &fake.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");
    let stored: Value =
        serde_json::from_slice(&fs::read(cfg.join("config.json")).unwrap()).unwrap();
    assert!(stored["auths"][&fake.addr]["auth"].is_string(), "{stored}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with("GET /token?")
            && s.contains("service=fake")
            && s.contains("account=rt")),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().unwrap(),
        "GET /v2/",
        "the token is tried: {seen:?}"
    );

    // Credentials are not the store's business: none is made for them.
    let no_store = work.path().join("no-store");
    let out = Command::new(env!("CARGO_BIN_EXE_rt-image"))
        .arg("--root")
        .arg(&no_store)
        .args(["logout", &fake.addr])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap();
    let out = ok(out, "logout");
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", fake.addr)
    );
    assert!(!no_store.exists(), "logout made a store");
}

/// Runs `args` of rt-image under `script`, on a terminal of its own:
/// `answers` are typed, each once the text before it has been shown.
/// Returns everything the terminal showed.
fn on_a_terminal(img: &RtImage, cfg: &Path, args: &[&str], answers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut cmd = format!(
        "{} --root {}",
        env!("CARGO_BIN_EXE_rt-image"),
        img.root().display()
    );
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = String::new();
    let mut stdin = child.stdin.take().unwrap();
    for (wait_for, answer) in answers {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !shown.contains(wait_for) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => shown.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{wait_for:?} never shown: {shown:?}");
                }
            }
        }
        stdin.write_all(answer.as_bytes()).unwrap();
    }
    while let Ok(b) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        shown.push_str(&String::from_utf8_lossy(&b));
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{shown}");
    shown
}

#[test]
fn on_a_terminal_login_asks_without_echo_and_push_draws_bars() {
    let reg = Registry::with_basic_auth();
    let img = RtImage::new();
    let work = tmpdir("rt-image-push-tty.");
    let cfg = work.path().join("docker");
    let shown = on_a_terminal(
        &img,
        &cfg,
        &["login", "--plain-http", &reg.addr],
        &[("Username: ", "rt\n"), ("Password: ", "pw\n")],
    );
    let (_, after) = shown.split_once("Password: ").unwrap();
    let (typed, _) = after
        .split_once("Login Succeeded")
        .unwrap_or_else(|| panic!("{shown:?}"));
    assert!(!typed.contains("pw"), "the password was echoed: {shown:?}");
    assert!(
        shown.contains("Username: rt"),
        "the user name echoes: {shown:?}"
    );

    base_image(&img, work.path());
    let dest = format!("{}/me/tty:1", reg.addr);
    img.ok(&["tag", "base:1", &dest]);
    let shown = on_a_terminal(&img, &cfg, &["push", "--plain-http", &dest], &[]);
    // Lines and bars share the terminal: counted in the whole transcript.
    assert_eq!(shown.matches(": Pushed").count(), 2, "{shown:?}");
    assert!(shown.contains("██"), "a bar was drawn: {shown:?}");
    assert!(shown.contains("1: digest: sha256:"), "{shown:?}");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A token service as Docker's token auth has it: `GET /token?service=&scope=`
/// with basic credentials `rt:pw` answers a JWT (RS256, signed with a key
/// made by openssl, its certificate in `x5c`) granting what was asked.
struct TokenService {
    proxy: Proxy,
    cert: PathBuf,
    _keys: tempfile::TempDir,
}

fn token_service() -> TokenService {
    let keys = tmpdir("rt-image-token-keys.");
    let (key, cert) = (keys.path().join("key.pem"), keys.path().join("cert.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=rt-test-token", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(der.status.success());
    let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rt:pw")
    );
    let proxy = Proxy::start(None);
    proxy.set(move |r| {
        let Some(query) = r.path.strip_prefix("/token?") else {
            return Action::Respond(404, "{}".into());
        };
        if r.header("authorization") != Some(good.as_str()) {
            return Action::Respond(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            );
        }
        let mut access = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k == "scope" {
                let scope = percent_decode(v);
                let mut parts = scope.splitn(3, ':');
                let (t, name, actions) = (parts.next(), parts.next(), parts.next());
                access.push(json!({"type": t, "name": name,
                                   "actions": actions.unwrap_or("").split(',').collect::<Vec<_>>()}));
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]})),
            b64(&json!({"iss": "rt-test-issuer", "sub": "rt", "aud": "rt-test",
                        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                        "jti": format!("{now}-{}", access.len()), "access": access}))
        );
        let mut sign = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        sign.stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let sig = sign.wait_with_output().unwrap();
        assert!(sig.status.success(), "openssl dgst -sign");
        let token = format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig.stdout)
        );
        Action::Respond(200, json!({"token": token, "expires_in": 300}).to_string())
    });
    TokenService {
        proxy,
        cert,
        _keys: keys,
    }
}

#[test]
fn token_auth_login_push_pull_run() {
    let tokens = token_service();
    let reg =
        Registry::with_token_auth(&format!("http://{}/token", tokens.proxy.addr), &tokens.cert);
    let img = RtImage::new();
    let mut rt = Rt::new();
    let work = tmpdir("rt-image-push-token.");
    let cfg = work.path().join("docker");
    base_image(&img, work.path());
    commit_change(&img, &mut rt, work.path(), "tok:v1", "pushed-with-a-token");
    let dest = format!("{}/me/tok:v1", reg.addr);
    img.ok(&["tag", "tok:v1", &dest]);

    let before = snapshot(img.root());
    let err = fails(rti(&img, Some(&cfg), &["push", "--plain-http", &dest]));
    assert!(err.contains("rt-image login"), "{err}");
    assert_eq!(snapshot(img.root()), before);

    let err = fails(login(&img, &cfg, &reg.addr, "rt", "wrong"));
    assert!(
        err.contains("token service: wrong user name or password"),
        "{err}"
    );
    assert!(!cfg.join("config.json").exists());
    let out = ok(login(&img, &cfg, &reg.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");

    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Pushed"), 3, "{out}");
    let digest = pushed_digest(&out);
    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Layer already exists"), 3, "{out}");

    empty_store(&img);
    let (stdout, pulled) = pull_and_run(&img, Some(&cfg), &mut rt, work.path(), &dest);
    assert_eq!(stdout, "pushed-with-a-token\n");
    assert_eq!(pulled, digest);
}
