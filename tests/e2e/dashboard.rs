//! The web dashboard (`wrun dashboard`): its JSON API gives the same JSON
//! as the command line's `--json`, its `/metrics` and job page are golden
//! on a finished job, the output downloads whole, it refuses to listen
//! beyond loopback without a token and rejects requests without it; and
//! (module `browser`) a headless Chromium watches a running job advance;
//! module `broker`: a broker's dashboard.

mod broker;
mod browser;
mod download;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{GC_CONTENT, assert_golden, repo, sample, status_json, wrun_binary, wrun_in};

/// How long one HTTP exchange may take.
const HTTP_LIMIT: Duration = Duration::from_secs(30);

/// A `wrun dashboard` process, killed when dropped.
pub(crate) struct Dashboard {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// What it wrote on stderr before it listened.
    pub(crate) banner: String,
}

impl Dashboard {
    /// Start `wrun dashboard --bind 127.0.0.1:0 extra…` on `home` and wait
    /// (bounded) for the address it prints.
    pub(crate) fn start(home: &Path, extra: &[&str]) -> Dashboard {
        let mut child = Command::new(wrun_binary())
            .env("WRUN_HOME", home)
            .args(["dashboard", "--bind", "127.0.0.1:0"])
            .args(extra)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wrun dashboard");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stderr).read_line(&mut line);
            let _ = tx.send(line);
        });
        let banner = rx.recv_timeout(HTTP_LIMIT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("wrun dashboard printed no address")
        });
        let addr = banner
            .strip_prefix("wrun: dashboard on http://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        Dashboard {
            child,
            addr,
            banner,
        }
    }

    /// `GET path` with `headers` (`Name: value` lines).
    pub(crate) fn get(&self, path: &str, headers: &[&str]) -> Response {
        get(self.addr, path, headers)
    }

    /// `GET path`, which must answer 200: its body as text.
    pub(crate) fn text(&self, path: &str) -> String {
        let response = self.get(path, &[]);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.text()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Header lines as sent (`Name: value`).
    pub(crate) headers: Vec<String>,
    pub(crate) body: Vec<u8>,
    /// False when a chunked body ended without its last chunk (a
    /// transfer the server broke off).
    pub(crate) whole: bool,
}

impl Response {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name` (any case), if sent.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }
}

/// `GET path` (HTTP/1.1, one request per connection), every read and
/// write bounded.
pub(crate) fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_LIMIT).expect("connect");
    stream.set_read_timeout(Some(HTTP_LIMIT)).unwrap();
    stream.set_write_timeout(Some(HTTP_LIMIT)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        request += &format!("{header}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).expect("send request");
    // Read to the end of the body: its Content-Length, else the end of
    // the connection (a DevTools server keeps its connection open).
    let mut raw = Vec::new();
    let mut buf = [0; 64 * 1024];
    let mut response: Option<Response> = None;
    loop {
        let length = response.as_ref().and_then(|r| {
            let length: usize = r.header("content-length")?.parse().ok()?;
            Some((r.body.len(), length))
        });
        if length.is_some_and(|(read, length)| read >= length) {
            break;
        }
        let n = stream.read(&mut buf).expect("read response");
        if n == 0 {
            break;
        }
        match &mut response {
            Some(response) => response.body.extend_from_slice(&buf[..n]),
            None => {
                raw.extend_from_slice(&buf[..n]);
                response = head(&raw);
            }
        }
    }
    let mut response = response.expect("a response head");
    if response.header("transfer-encoding") == Some("chunked") {
        let (body, whole) = unchunk(&response.body);
        response.body = body;
        response.whole = whole;
    }
    response
}

/// The response whose head `raw` starts with (the body read so far in
/// it), once `raw` holds the whole head.
fn head(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    Some(Response {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: raw[split + 4..].to_vec(),
        whole: true,
    })
}

/// A body in HTTP/1.1's chunked coding, decoded, and whether it ended
/// with its last (empty) chunk.
fn unchunk(mut coded: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line) = coded.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&coded[..line])
            .ok()
            .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok())
            .expect("a chunk size");
        if size == 0 {
            return (body, true);
        }
        let Some(data) = coded.get(line + 2..line + 2 + size) else {
            body.extend_from_slice(&coded[line + 2..]);
            return (body, false);
        };
        body.extend_from_slice(data);
        coded = coded.get(line + 2 + size + 2..).unwrap_or_default();
    }
}

/// Run gc-content over the shipped sample in chunks of 120 records in
/// `home`, into `out`: a finished job 1.
fn finished_job(home: &Path, out: &Path) {
    let (fasta, _) = sample();
    let run = wrun_in(
        home,
        &[
            "submit",
            GC_CONTENT,
            "--input",
            fasta.to_str().unwrap(),
            "--chunk-records",
            "120",
            "--name",
            "sample",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Make JSON or text comparable from run to run: times, temp and repo
/// paths, digests, wall times, fuel and chunk outputs' lengths vary.
fn normalize(text: &str, home: &Path, dir: &Path) -> String {
    let text = text.replace(&home.display().to_string(), "<home>");
    let text = text.replace(&dir.display().to_string(), "<dir>");
    let text = text.replace(repo().to_str().unwrap(), "<repo>");
    let rules = [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (r"[0-9a-f]{64}", "<digest>"),
        (r#""wall_us": \d+"#, r#""wall_us": <us>"#),
        (r#""size": \d+"#, r#""size": <bytes>"#),
        (r#""modified_ns": \d+"#, r#""modified_ns": <ns>"#),
    ];
    let mut text = text;
    for (pattern, with) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

/// The wall-time histogram's values vary: keep its lines' names, labels
/// and the count of tasks.
fn normalize_metrics(text: &str) -> String {
    let bucket =
        regex::Regex::new(r#"^(wrun_task_wall_seconds_(bucket|sum)\{[^}]*\}) .*$"#).unwrap();
    text.lines()
        .map(|line| bucket.replace(line, "$1 <n>").into_owned() + "\n")
        .collect()
}

#[test]
fn the_api_answers_what_the_command_line_prints_and_metrics_are_golden() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tsv");
    finished_job(home.path(), &out);
    let dashboard = Dashboard::start(home.path(), &[]);

    // One definition: the API's JSON is the command line's `--json`.
    let parse = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
    assert_eq!(
        parse(dashboard.text("/api/jobs")),
        status_json(home.path(), None)
    );
    let job = dashboard.text("/api/jobs/1");
    assert_eq!(parse(job.clone()), status_json(home.path(), Some("1")));
    let logs = wrun_in(home.path(), &["logs", "1", "--json"], None);
    assert_eq!(
        parse(dashboard.text("/api/jobs/1/logs")),
        parse(logs.stdout_text())
    );
    assert_golden(
        "dashboard-job.json",
        &normalize(&job, home.path(), dir.path()),
    );

    // Filters like `wrun status`'s.
    let filtered = |query: &str| parse(dashboard.text(&format!("/api/jobs?{query}")));
    assert_eq!(filtered("state=done")[0]["id"], 1);
    assert_eq!(filtered("state=failed"), serde_json::json!([]));
    assert_eq!(filtered("name=samp&since=1h")[0]["name"], "sample");
    let bad = dashboard.get("/api/jobs?state=lost", &[]);
    assert_eq!(bad.status, 400);
    assert_golden("dashboard-bad-state.json", &bad.text());
    assert_eq!(dashboard.get("/api/jobs/9", &[]).status, 404);

    // The chunks as the timeline draws them: one bar per chunk.
    let chunks = parse(job)["tasks"].as_array().unwrap().len();
    assert_eq!(chunks, 10, "the sample's 1200 records in chunks of 120");
    let timeline = dashboard.text("/api/jobs/1/timeline.svg");
    assert_eq!(
        timeline.matches(r#"class="chunk chunk-done""#).count(),
        chunks
    );
    assert!(timeline.contains("time since the run started (s)"));
    let throughput = dashboard.text("/api/jobs/1/throughput.svg");
    assert!(throughput.contains("chunks finished per second"));

    // The output downloads whole.
    let output = dashboard.get("/api/jobs/1/output", &[]);
    assert_eq!(output.status, 200);
    assert_eq!(output.body, std::fs::read(&out).unwrap());
    assert_eq!(sample().1.as_bytes(), output.body);

    // Metrics: names, types, labels.
    let metrics = dashboard.get("/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text"))
    );
    assert_golden("dashboard-metrics.txt", &normalize_metrics(&metrics.text()));

    // The page and its script are served from the binary.
    assert!(dashboard.text("/").contains(r#"<script src="/app.js">"#));
    assert!(dashboard.text("/app.js").contains("POLL_MS"));
    // A local journal has no nodes.
    assert_eq!(dashboard.get("/api/nodes", &[]).status, 404);
}

#[test]
fn beyond_loopback_a_token_is_required_and_every_request_must_carry_it() {
    let home = tempfile::tempdir().unwrap();
    let run = wrun_in(home.path(), &["dashboard", "--bind", "0.0.0.0:0"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_golden("dashboard-no-token.stderr", &run.stderr);

    let token = "t0ken-for-the-test";
    let file = home.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let dashboard = Dashboard::start(home.path(), &["--token-file", file.to_str().unwrap()]);
    assert!(!dashboard.banner.contains(token), "{}", dashboard.banner);
    assert!(dashboard.banner.contains("(token required)"));

    for path in ["/", "/api/jobs", "/metrics", "/api/jobs/1/output"] {
        let response = dashboard.get(path, &[]);
        assert_eq!(response.status, 401, "GET {path} without the token");
        assert!(!response.text().contains(token));
    }
    let wrong = dashboard.get("/api/jobs", &["Authorization: Bearer t0ken-for-the-tes"]);
    assert_eq!(wrong.status, 401);
    assert_golden("dashboard-unauthorized.txt", &wrong.text());
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(dashboard.get("/api/jobs", &[&bearer]).status, 200);

    // A one-time `?token=` visit sets the cookie and leaves the address.
    let login = dashboard.get(&format!("/?token={token}"), &[]);
    assert_eq!(login.status, 303);
    assert_eq!(login.header("location"), Some("/"));
    let cookie = login.header("set-cookie").expect("a cookie").to_owned();
    assert!(
        cookie.starts_with(&format!("wrun_token={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"));
    let with_cookie = format!("Cookie: {}", cookie.split(';').next().unwrap());
    assert_eq!(dashboard.get("/api/jobs", &[&with_cookie]).status, 200);
    assert_eq!(dashboard.get("/?token=wrong", &[]).status, 401);
}
