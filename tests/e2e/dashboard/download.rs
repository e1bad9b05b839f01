//! The output download: an unfinished job's output is refused, a stored
//! output found damaged mid-way breaks the transfer off rather than
//! ending a short file, and downloads beyond their few slots are turned
//! away while the pages go on answering.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use super::{Dashboard, HTTP_LIMIT};
use crate::support::{TASK_PROBE, assert_golden, status_json, wait_until, wrun_in};

/// Lines of 64 bytes making `bytes` bytes (a multiple of 64), numbered.
fn lines(bytes: usize) -> Vec<u8> {
    (0..bytes / 64)
        .flat_map(|i| format!("{i:>63}\n").into_bytes())
        .collect()
}

/// Run the echo probe over `input` in chunks of `chunk` bytes in `home`,
/// into `out`; it must succeed.
fn echo_job(home: &Path, input: &Path, chunk: &str, out: &Path) {
    let run = wrun_in(
        home,
        &[
            "submit",
            TASK_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--format",
            "lines",
            "--chunk-bytes",
            chunk,
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The file under `home` named `hex` (a blob of the store).
fn blob(home: &Path, hex: &str) -> PathBuf {
    let path = home.join("blobs").join(&hex[..2]).join(hex);
    assert!(path.is_file(), "no blob {}", path.display());
    path
}

#[test]
fn an_unfinished_output_is_refused_and_a_damaged_one_breaks_the_transfer() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Job 1 fails at its second chunk: no complete output to download.
    let input = dir.path().join("fails.txt");
    std::fs::write(&input, "a\nX\nb\n").unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            "1",
            "--",
            "fail-if",
            "X",
        ],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);

    // Job 2: three chunks of 1.5 MiB, whose outputs live in the store.
    let input = dir.path().join("big.txt");
    let text = lines(3 * 1536 * 1024);
    std::fs::write(&input, &text).unwrap();
    echo_job(home.path(), &input, "1536KiB", &dir.path().join("out.txt"));

    let dashboard = Dashboard::start(home.path(), &[]);
    let refused = dashboard.get("/api/jobs/1/output", &[]);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_golden("dashboard-output-unfinished.json", &refused.text());
    let whole = dashboard.get("/api/jobs/2/output", &[]);
    assert_eq!(whole.status, 200);
    assert!(whole.whole);
    assert_eq!(whole.body, text);

    // Damage the second chunk's stored output: the download sends the
    // first chunk, then breaks off.
    let detail = status_json(home.path(), Some("2"));
    let hex = detail["tasks"][1]["output_blake3"].as_str().unwrap();
    let path = blob(home.path(), hex);
    let mut damaged = std::fs::read(&path).unwrap();
    damaged[0] ^= 1;
    std::fs::write(&path, damaged).unwrap();
    let broken = dashboard.get("/api/jobs/2/output", &[]);
    assert_eq!(broken.status, 200);
    assert!(!broken.whole, "the transfer must not end cleanly");
    assert_eq!(broken.body, text[..1536 * 1024]);
}

/// Ask for `path` on a connection of its own and read only the response
/// head: the download stalls once the buffers between fill up.
fn stall(addr: SocketAddr, path: &str) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_LIMIT).expect("connect");
    stream.set_read_timeout(Some(HTTP_LIMIT)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status");
    (status, stream)
}

#[test]
fn downloads_beyond_their_slots_are_turned_away_and_the_pages_still_answer() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 32 MiB in chunks of 64 KiB: far more than the pieces in flight and
    // the sockets' buffers hold, so a client that stops reading stalls
    // its download.
    let input = dir.path().join("big.txt");
    let text = lines(32 << 20);
    std::fs::write(&input, &text).unwrap();
    echo_job(home.path(), &input, "64KiB", &dir.path().join("out.txt"));
    let dashboard = Dashboard::start(home.path(), &[]);

    let (first, stalled) = stall(dashboard.addr, "/api/jobs/1/output");
    let (second, _also_stalled) = stall(dashboard.addr, "/api/jobs/1/output");
    assert_eq!((first, second), (200, 200));
    let busy = dashboard.get("/api/jobs/1/output", &[]);
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("5"));
    assert_golden("dashboard-downloads-busy.json", &busy.text());
    // The pages and the API do not wait for the stalled downloads.
    assert_eq!(dashboard.get("/api/jobs", &[]).status, 200);
    assert_eq!(dashboard.get("/api/jobs/1", &[]).status, 200);
    assert_eq!(dashboard.get("/metrics", &[]).status, 200);

    // A client that goes away frees its slot.
    drop(stalled);
    wait_until("a download slot is free again", || {
        let response = dashboard.get("/api/jobs/1/output", &[]);
        match response.status {
            503 => false,
            status => {
                assert_eq!(status, 200);
                assert!(response.whole && response.body == text);
                true
            }
        }
    });
}
