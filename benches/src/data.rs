//! Reference data (`--data`): sw-search against a 10 MB reference granted
//! as a data file, in local mode and through a broker and two nodes (each
//! node on its own store, fetching the data blob by digest once, and all
//! on one shared `file://` store, and all on one S3 bucket), against
//! ssearch36 on the same search; and the store's put and get of 1 MiB and
//! 64 MiB blobs on a `file://` store and on S3. The S3 rows need a server
//! named by `AWS_ENDPOINT` (`benches/run` starts moto with
//! `.ci/s3-up.sh`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wrun_store::BlobStore;

use crate::bio::{SW_SEARCH, proteins};
use crate::cluster::Cluster;
use crate::{Table, fmt_ms, median, wrun_binary};

/// `wrun submit sw-search` of `queries` against the data file `reference`,
/// one query per task, through `broker` if given.
fn search(home: &Path, queries: &Path, reference: &Path, broker: Option<&str>) -> Duration {
    let started = Instant::now();
    let mut command = Command::new(wrun_binary());
    command
        .env("WRUN_HOME", home)
        .arg("submit")
        .args(
            broker
                .map(|endpoint| ["--broker", endpoint])
                .into_iter()
                .flatten(),
        )
        .args([
            SW_SEARCH,
            "--fresh",
            "--chunk-records",
            "1",
            "--progress",
            "never",
        ])
        .arg("--input")
        .arg(queries)
        .arg("--data")
        .arg(format!("ref={}", reference.display()))
        .args(["--", "--reference", "ref"])
        .stdout(Stdio::null());
    let status = command.status().expect("run wrun");
    assert!(status.success(), "wrun submit sw-search failed");
    started.elapsed()
}

pub(crate) fn data(table: &mut Table, dir: &Path, workers: usize, scale: usize) {
    let root = dir.join("data");
    std::fs::create_dir_all(&root).unwrap();
    let queries = root.join("queries.fa");
    std::fs::write(&queries, proteins(4, 40 / scale.min(4), 0x9e37_79b9)).unwrap();
    let reference = root.join("reference.fa");
    // 10 MB of reference: 25,000 proteins of 400 residues.
    std::fs::write(&reference, proteins(25_000, 400, 0x85eb_ca6b)).unwrap();

    let local_home = root.join("local");
    let local = median(|| search(&local_home, &queries, &reference, None));

    let own = Cluster::start(&root.join("own"), workers, None);
    let client = root.join("own-client");
    let first = search(&client, &queries, &reference, Some(&own.endpoint));
    let remote = median(|| search(&client, &queries, &reference, Some(&own.endpoint)));
    drop(own);

    let shared = format!("file://{}", root.join("shared-store").display());
    let on_shared = Cluster::start(&root.join("shared"), workers, Some(&shared));
    let client = root.join("shared-client");
    let shared_time = median(|| search(&client, &queries, &reference, Some(&on_shared.endpoint)));
    drop(on_shared);

    let s3 = S3::from_env();
    let s3_time = s3.as_ref().map(|s3| {
        let store = format!("s3://{}/cluster", s3.bucket());
        let on_s3 = Cluster::start(&root.join("s3"), workers, Some(&store));
        let client = root.join("s3-client");
        median(|| search(&client, &queries, &reference, Some(&on_s3.endpoint)))
    });

    let ssearch = median(|| {
        let started = Instant::now();
        let status = Command::new("ssearch36")
            .args(["-q", "-m", "8", "-T", &workers.to_string()])
            .args(["-s", "BL62", "-f", "-11", "-g", "-1", "-E", "1000000"])
            .arg(&queries)
            .arg(&reference)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssearch36 (apt-get install fasta3)");
        assert!(status.success(), "ssearch36 failed");
        started.elapsed()
    });
    let what = "data: sw-search, 4 queries x 10 MB --data reference";
    table.row(
        &format!("{what}, local"),
        fmt_ms(local),
        &format!(
            "ssearch36 -T {workers}: {} (wrun is {:.2}x its time)",
            fmt_ms(ssearch),
            local.as_secs_f64() / ssearch.as_secs_f64()
        ),
    );
    table.row(
        &format!("{what}, broker + 2 nodes, own stores"),
        fmt_ms(remote),
        &format!(
            "{:.2}x local; the first job, whose nodes fetch the 10 MB blob: {}",
            remote.as_secs_f64() / local.as_secs_f64(),
            fmt_ms(first)
        ),
    );
    table.row(
        &format!("{what}, broker + 2 nodes, shared file:// store"),
        fmt_ms(shared_time),
        &format!(
            "{:.2}x local",
            shared_time.as_secs_f64() / local.as_secs_f64()
        ),
    );
    match s3_time {
        Some(s3_time) => table.row(
            &format!("{what}, broker + 2 nodes, one S3 bucket (moto)"),
            fmt_ms(s3_time),
            &format!(
                "{:.2}x local, {:.2}x the shared file:// store",
                s3_time.as_secs_f64() / local.as_secs_f64(),
                s3_time.as_secs_f64() / shared_time.as_secs_f64()
            ),
        ),
        None => table.row(&format!("{what}, on S3"), "skipped", S3::SKIPPED),
    }
    let file = root.join("latency-store");
    store_latency(table, "file://", "local disk, fsynced put", || {
        BlobStore::open_local(&file).expect("the file store")
    });
    match &s3 {
        Some(s3) => {
            let url = format!("s3://{}/latency", s3.bucket());
            let caches = root.join("latency-caches");
            let mut fresh = 0;
            // A fresh local cache for every store, so that a get reads the
            // bucket, not the verified copy a put left on this machine.
            store_latency(table, "S3, moto", "over loopback HTTP", || {
                fresh += 1;
                BlobStore::open(&url, &caches.join(fresh.to_string())).expect("the S3 store")
            })
        }
        None => table.row("data: store put / get on S3", "skipped", S3::SKIPPED),
    }
}

/// The S3 server of `AWS_ENDPOINT` and the `AWS_*` variables, if set.
struct S3 {
    endpoint: String,
}

impl S3 {
    const SKIPPED: &str = "AWS_ENDPOINT is not set: run .ci/s3-up.sh and source its env file";

    fn from_env() -> Option<S3> {
        let endpoint = std::env::var("AWS_ENDPOINT").ok()?;
        (!endpoint.is_empty()).then_some(S3 { endpoint })
    }

    /// A new, empty bucket (object_store cannot create one; moto takes an
    /// unsigned `PUT /BUCKET`).
    fn bucket(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("wrun-bench-{}-{n}", std::process::id());
        let status = Command::new("curl")
            .args(["-sf", "-X", "PUT"])
            .arg(format!("{}/{bucket}", self.endpoint))
            .stdout(Stdio::null())
            .status()
            .expect("curl");
        assert!(status.success(), "cannot create bucket {bucket}");
        bucket
    }
}

/// Put (a new blob each time) and get (read and verified, through a store
/// from `open`) of 1 MiB and 64 MiB blobs on the store `open` gives.
fn store_latency(table: &mut Table, kind: &str, note: &str, mut open: impl FnMut() -> BlobStore) {
    let store = open();
    for (label, size) in [("1 MiB", 1usize << 20), ("64 MiB", 64 << 20)] {
        let mut round = 0u8;
        let mut digest = None;
        let put = median(|| {
            round += 1;
            let mut bytes = vec![7u8; size];
            bytes[0] = round;
            let started = Instant::now();
            digest = Some(store.put(&bytes).expect("put"));
            started.elapsed()
        });
        let digest = digest.unwrap();
        let get = median(|| {
            let reader = open();
            let started = Instant::now();
            let bytes = reader.get(&digest).expect("get").expect("present");
            assert_eq!(bytes.len(), size);
            started.elapsed()
        });
        table.row(
            &format!("data: store put / get of a {label} blob ({kind})"),
            format!("{} / {}", fmt_ms(put), fmt_ms(get)),
            &format!("{note}; get verifies the digest"),
        );
    }
}
