//! The store on S3 (`--store s3://bucket/prefix`, `WRUN_STORE` in local
//! mode), against the real S3 API server that `.ci/s3-up.sh` starts (moto
//! on loopback), found through the `AWS_*` variables it exports. Without
//! them these tests fail under `CI=true` and are skipped elsewhere, saying
//! why.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use wrun_store::{BlobStore, Digest};

use crate::cluster::Cluster;
use crate::data::write_reference;
use crate::support::{COMMAND_PROBE, GC_CONTENT, TASK_PROBE, sample, wrun, wrun_with_env};

/// The S3 server of the environment.
pub(crate) struct S3 {
    pub(crate) endpoint: String,
}

impl S3 {
    /// The server at `AWS_ENDPOINT`; `None` (the test then returns) when it
    /// is not set outside CI.
    pub(crate) fn from_env() -> Option<S3> {
        match std::env::var("AWS_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => Some(S3 { endpoint }),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("the S3 store tests need a server: run .ci/s3-up.sh and source its env file")
            }
            _ => {
                eprintln!(
                    "skipped: AWS_ENDPOINT is not set (run .ci/s3-up.sh and source its env file)"
                );
                None
            }
        }
    }

    /// A bucket name no test has used in this process.
    pub(crate) fn fresh_name(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("wrun-test-{}-{n}", std::process::id())
    }

    /// A new, empty bucket (object_store cannot create one; moto takes an
    /// unsigned `PUT /BUCKET`).
    pub(crate) fn bucket(&self) -> String {
        let bucket = self.fresh_name();
        self.curl(&["-X", "PUT", &format!("{}/{bucket}", self.endpoint)]);
        bucket
    }

    /// The blobs under `prefix` in `bucket`, as (digest, size in bytes),
    /// listed through the S3 API (ListObjectsV2).
    fn blobs(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let url = format!(
            "{}/{bucket}?list-type=2&max-keys=1000&prefix={prefix}/blobs/",
            self.endpoint
        );
        let listing = self.curl(&[&url]);
        assert!(
            !listing.contains("<IsTruncated>true"),
            "one page lists them all"
        );
        listing
            .split("<Contents>")
            .skip(1)
            .map(|object| {
                let field = |name: &str| {
                    let open = format!("<{name}>");
                    let start = object.find(&open).expect("field in listing") + open.len();
                    let end = object[start..].find('<').unwrap() + start;
                    object[start..end].to_owned()
                };
                let key = field("Key");
                let digest = key.rsplit('/').next().unwrap().to_owned();
                (digest, field("Size").parse().unwrap())
            })
            .collect()
    }

    /// Put the file `path` at `key` in `bucket`, replacing any object
    /// there (signed: moto refuses an unsigned overwrite; as a form's
    /// content type, the body would be lost).
    pub(crate) fn put(&self, bucket: &str, key: &str, path: &Path) {
        let data = format!("@{}", path.display());
        let url = format!("{}/{bucket}/{key}", self.endpoint);
        let binary = "Content-Type: application/octet-stream";
        let mut args: Vec<&str> = vec!["-X", "PUT", "-H", binary, "--data-binary", &data];
        let signed = signed();
        args.extend(signed.iter().map(String::as_str));
        args.push(&url);
        self.curl(&args);
    }

    /// The keys in `bucket` under `prefix`, listed through the S3 API
    /// (ListObjectsV2); uncompleted multipart uploads are no objects.
    pub(crate) fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!(
            "{}/{bucket}?list-type=2&max-keys=1000&prefix={prefix}",
            self.endpoint
        );
        self.curl(&[&url])
            .split("<Key>")
            .skip(1)
            .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
            .collect()
    }

    /// The keys of the multipart uploads in `bucket` that are neither
    /// completed nor aborted (ListMultipartUploads).
    pub(crate) fn uploads(&self, bucket: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?uploads", self.endpoint);
        self.curl(&[&url])
            .split("<Key>")
            .skip(1)
            .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
            .collect()
    }

    /// The bytes of the object at `key` in `bucket`.
    /// The bytes of the object at `key` in `bucket`.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let url = format!("{}/{bucket}/{key}", self.endpoint);
        let output = Command::new("curl")
            .arg("-sSf")
            .args(signed())
            .arg(&url)
            .output()
            .expect("run curl");
        assert!(output.status.success(), "GET {bucket}/{key}");
        output.stdout
    }

    pub(crate) fn curl(&self, args: &[&str]) -> String {
        let output = Command::new("curl")
            .arg("-sSf")
            .args(args)
            .output()
            .expect("run curl");
        assert!(
            output.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// curl's arguments that sign a request (SigV4) with the environment's
/// keys: moto refuses an unsigned read or overwrite of an object.
fn signed() -> [String; 4] {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    [
        "--aws-sigv4".to_owned(),
        format!("aws:amz:{}:s3", var("AWS_REGION", "us-east-1")),
        "--user".to_owned(),
        format!(
            "{}:{}",
            var("AWS_ACCESS_KEY_ID", ""),
            var("AWS_SECRET_ACCESS_KEY", "")
        ),
    ]
}

/// The credentials of the environment, which nothing wrun prints may show.
fn secrets() -> Vec<String> {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .filter(|value| !value.is_empty())
        .collect()
}

pub(crate) fn assert_no_secret(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for secret in secrets() {
        assert!(!text.contains(&secret), "{what} shows a credential");
    }
}

fn module_digest(module: &str) -> String {
    Digest::of(&std::fs::read(module).unwrap()).to_hex()
}

/// An echo of every line with a hash after it, in chunks over the inline
/// limit (two chunks of 1.5 MB, two outputs of 2.3 MB): every large blob
/// goes through the store.
pub(crate) fn large_job<'a>(input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-bytes",
        "1500KiB",
        "-o",
        out.to_str().unwrap(),
        "--",
        "work",
        "1",
    ]
}

#[test]
fn a_broker_and_two_nodes_on_s3_write_what_local_mode_writes() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let cluster = Cluster::on_store(2, &format!("s3://{bucket}/wrun"));
    let dir = cluster.dir.path();
    let input = dir.join("big.txt");
    let lines: String = (0..100_000).map(|i| format!("line {i:>24}\n")).collect();
    std::fs::write(&input, &lines).unwrap();

    let out = dir.join("remote.txt");
    let run = cluster.wrun(&large_job(&input, &out));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let local = dir.join("local.txt");
    let mut args = large_job(&input, &local);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&local).unwrap());

    let blobs = s3.blobs(&bucket, "wrun");
    let module = module_digest(TASK_PROBE);
    assert!(
        blobs.iter().any(|(digest, _)| *digest == module),
        "the module is in the bucket"
    );
    let large = blobs
        .iter()
        .filter(|(digest, size)| *digest != module && *size > 1 << 20)
        .count();
    assert_eq!(large, 4, "two chunks and two outputs: {blobs:?}");

    let status = cluster.wrun(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_no_secret("wrun status --json", &status.stdout);
    assert_no_secret("the broker's log", cluster.broker.log().as_bytes());
    for node in &cluster.nodes {
        assert_no_secret("a node's log", node.log().as_bytes());
    }
    // The broker's home: `broker` in the WRUN_HOME it was given.
    let journal = std::fs::read(dir.join("broker/broker/journal.db")).unwrap();
    assert_no_secret("the broker's journal", &journal);
}

#[test]
fn local_mode_keeps_its_blobs_in_the_bucket() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let store = format!("s3://{bucket}/local");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let env = [("WRUN_STORE", store.as_str())];
    let (fasta, expected) = sample();
    let out = dir.path().join("gc.tsv");
    let args = [
        "submit",
        GC_CONTENT,
        "--input",
        fasta.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let run = wrun_with_env(&home, &args, None, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    let module = module_digest(GC_CONTENT);
    let blobs = s3.blobs(&bucket, "local");
    assert!(
        blobs.iter().any(|(digest, _)| *digest == module),
        "the module is in the bucket: {blobs:?}"
    );
    let status = wrun_with_env(&home, &["status", "--json"], None, &env);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_no_secret("wrun status --json", &status.stdout);
}

#[test]
fn a_missing_bucket_or_a_wrong_endpoint_is_exit_2_naming_the_url() {
    let Some(s3) = S3::from_env() else { return };
    let missing = format!("s3://{}/wrun", s3.fresh_name());
    let existing = format!("s3://{}/wrun", s3.bucket());
    // Port 1 on loopback: nothing listens there.
    let cases = [
        (missing.as_str(), None),
        (existing.as_str(), Some("http://127.0.0.1:1")),
    ];
    let home = tempfile::tempdir().unwrap();
    let (fasta, _) = sample();
    let out = home.path().join("gc.tsv");
    for (url, endpoint) in cases {
        let mut env = vec![("WRUN_STORE", url)];
        env.extend(endpoint.map(|endpoint| ("AWS_ENDPOINT", endpoint)));
        let commands: [&[&str]; 3] = [
            &["broker", "--bind", "tcp://127.0.0.1:0", "--store", url],
            &["node", "--connect", "tcp://127.0.0.1:1", "--store", url],
            &[
                "submit",
                GC_CONTENT,
                "--input",
                fasta.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        ];
        for args in commands {
            let run = wrun_with_env(home.path(), args, None, &env);
            assert_eq!(run.code, 2, "{args:?} on {url}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("cannot open the store at {url}: ")),
                "{args:?}: {}",
                run.stderr
            );
            assert_no_secret("the error", run.stderr.as_bytes());
        }
    }
}

/// Two machines' stores on one bucket, each with its own cache: what one
/// puts the other reads, views and lists by size; an object that does not
/// match its digest is missing (and deleted), never returned.
#[test]
fn blobs_cross_machines_through_the_bucket_verified() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let url = format!("s3://{bucket}/blobs");
    let dir = tempfile::tempdir().unwrap();
    let one = BlobStore::open(&url, &dir.path().join("one")).unwrap();
    let two = BlobStore::open(&url, &dir.path().join("two")).unwrap();
    assert_eq!(two.remote_url(), Some(url.as_str()));

    // A file of two 8 MiB parts and a short one, streamed.
    let bytes: Vec<u8> = (0..(17 << 20) + 7).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("ref.bin");
    std::fs::write(&file, &bytes).unwrap();
    let (reference, size) = one.put_file(&file).unwrap();
    assert_eq!(size, bytes.len() as u64);
    let small = one.put(b"a small blob").unwrap();
    assert_eq!(two.size(&reference).unwrap(), Some(size));
    let view = two.view(&[("ref".to_owned(), reference)]).unwrap();
    assert!(std::fs::read(view.join("ref")).unwrap() == bytes);
    assert!(
        view.starts_with(dir.path().join("two")),
        "viewed from the local cache"
    );
    assert_eq!(
        two.get(&small).unwrap().as_deref(),
        Some(&b"a small blob"[..])
    );

    // Other bytes under a digest's name, as a broken upload could leave.
    let forged = Digest::of(b"the real bytes");
    let key = format!("blobs/blobs/{}/{forged}", &forged.to_hex()[..2]);
    s3.curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "other bytes",
        &format!("{}/{bucket}/{key}", s3.endpoint),
    ]);
    assert_eq!(two.get(&forged).unwrap(), None);
    assert!(
        !s3.blobs(&bucket, "blobs")
            .iter()
            .any(|(d, _)| *d == forged.to_hex()),
        "the forged object is deleted"
    );
    assert_eq!(two.put(b"the real bytes").unwrap(), forged);
    assert_eq!(
        one.get(&forged).unwrap().as_deref(),
        Some(&b"the real bytes"[..])
    );
}

/// Reference data on a cluster without a shared directory: the data file
/// goes to the bucket once, and each node reads it from its own cache.
#[test]
fn nodes_on_s3_read_reference_data_from_the_bucket() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let cluster = Cluster::on_store(2, &format!("s3://{bucket}/wrun"));
    let dir = cluster.dir.path();
    let (path, bytes) = write_reference(dir, 3 << 20);
    let grant = format!("ref={}", path.display());
    let input = dir.join("two.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let run = cluster.wrun(&[
        "submit",
        COMMAND_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--chunk-records",
        "1",
        "--data",
        &grant,
        "--",
        "data-cat",
        "ref",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout == bytes.repeat(2), "every chunk read the data");
    let reference = Digest::of(&bytes).to_hex();
    assert!(
        s3.blobs(&bucket, "wrun")
            .iter()
            .any(|(digest, size)| *digest == reference && *size == bytes.len() as u64),
        "the data file is in the bucket"
    );
}
