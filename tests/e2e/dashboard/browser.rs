//! A headless Chromium (Debian's `chromium`), driven over its DevTools
//! protocol, watches a running job on the dashboard: the job's row, its
//! progress and its timeline's chunks appear, and progress advances with
//! no reload. A screenshot is saved and its path printed. Under `CI=true`
//! a missing Chromium fails the test; elsewhere it is skipped, saying so.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::{Dashboard, HTTP_LIMIT, get};
use crate::journal::{work_args_with, work_input};
use crate::support::{repo, spawn_wrun, status_json, wait_until};

/// Iterations of the probe's hash per record: about 70 ms, so that the
/// job's 150 chunks of 4 records run for many seconds on 2 workers.
const SLOW_WORK: &str = "4000000";

/// The Chromium binary on `PATH`, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium showing one page, killed when dropped.
struct Browser {
    child: Child,
    page: WebSocket<TcpStream>,
    next_id: u64,
}

impl Browser {
    /// Start `binary` on `url` with a profile in `profile`, and connect to
    /// the page over the DevTools protocol.
    fn open(binary: &Path, url: &str, profile: &Path) -> Browser {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(ws) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(ws.to_owned());
                }
            }
        });
        let Ok(browser_ws) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("chromium printed no DevTools address");
        };
        let port: SocketAddr = browser_ws
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .expect("a DevTools address");
        // The page's own endpoint, from the target list.
        let mut page_ws = None;
        wait_until("chromium lists the page", || {
            let targets: Value =
                serde_json::from_slice(&get(port, "/json/list", &[]).body).unwrap_or_default();
            page_ws = targets.as_array().into_iter().flatten().find_map(|t| {
                (t["type"] == "page")
                    .then(|| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))?
            });
            page_ws.is_some()
        });
        let page_ws = page_ws.expect("a page");
        let stream = TcpStream::connect_timeout(&port, HTTP_LIMIT).expect("connect to DevTools");
        stream.set_read_timeout(Some(HTTP_LIMIT)).unwrap();
        stream.set_write_timeout(Some(HTTP_LIMIT)).unwrap();
        let (page, _) = tungstenite::client(page_ws.as_str(), stream).expect("DevTools handshake");
        Browser {
            child,
            page,
            next_id: 1,
        }
    }

    /// Call DevTools method `method` and return its result (events that
    /// arrive meanwhile are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params });
        self.page
            .send(Message::text(request.to_string()))
            .expect("send to DevTools");
        loop {
            let message = self.page.read().expect("read from DevTools");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of `expression` in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Wait (bounded) until `expression` is true in the page.
    fn wait_for(&mut self, what: &str, expression: &str) {
        wait_until(what, || self.eval(expression) == json!(true));
    }

    /// A PNG of the page.
    fn screenshot(&mut self) -> Vec<u8> {
        let result = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().expect("PNG data"))
            .expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a test saves files worth keeping: `$WRUN_ARTIFACTS` (CI sets
/// it), else `target/test-artifacts`.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("WRUN_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-artifacts"));
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    dir
}

#[test]
fn a_browser_watches_a_running_job_advance_without_reloading() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no chromium on PATH: CI installs Debian's chromium (.ci/run)"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let out = dir.path().join("out.txt");
    let mut job = spawn_wrun(home.path(), &work_args_with(&input, &out, SLOW_WORK));
    wait_until("the job has finished a chunk", || {
        status_json(home.path(), None)[0]["tasks"]["done"]
            .as_u64()
            .is_some_and(|done| done > 0)
    });
    let dashboard = Dashboard::start(home.path(), &[]);
    let url = format!("http://{}/#/", dashboard.addr);
    let mut browser = Browser::open(&binary, &url, &dir.path().join("profile"));

    browser.wait_for(
        "the jobs page lists the running job",
        r#"document.querySelector('#jobs tr.job[data-id="1"] .state')?.textContent === "running""#,
    );
    // Marks this page: a reload would lose it.
    browser.eval("window.wrunTestMarker = 'kept'; location.hash = '#/job/1'; true");
    browser.wait_for(
        "the job page shows the timeline's chunks",
        "document.querySelectorAll('#timeline rect.chunk').length > 0",
    );
    let progress = "Number(document.querySelector('#job-summary .progress')?.dataset.value ?? -1)";
    let first = browser.eval(progress).as_f64().unwrap();
    assert!(first >= 0.0, "progress shows: {first}");
    let chunks = "document.querySelectorAll('#timeline rect.chunk-done').length";
    let first_chunks = browser.eval(chunks).as_u64().unwrap();
    browser.wait_for(
        "progress advances on the page",
        &format!("{progress} > {first}"),
    );
    browser.wait_for(
        "more chunks appear on the timeline",
        &format!("{chunks} > {first_chunks}"),
    );
    assert_eq!(
        browser.eval("window.wrunTestMarker"),
        json!("kept"),
        "the page was reloaded"
    );
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = artifacts().join("dashboard-job.png");
    std::fs::write(&path, png).unwrap();
    // Straight to stderr: the test harness captures `println!`, and the
    // path belongs in the log of every run.
    let _ = writeln!(
        std::io::stderr(),
        "dashboard screenshot: {}",
        path.display()
    );
    let _ = job.kill();
    let _ = job.wait();
}
