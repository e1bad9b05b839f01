//! Reference data (`--data`): sw-search against a 10 MB reference granted
//! as a data file, in local mode and through a broker and two nodes (each
//! node on its own store, fetching the data blob by digest once, and all
//! on one shared `file://` store), against ssearch36 on the same search;
//! and the store's put and get of 1 MiB and 64 MiB blobs.

use std::path::Path;
use std::process::{Command, Stdio};
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
            "{:.2}x local; an S3 store is not built yet (no row)",
            shared_time.as_secs_f64() / local.as_secs_f64()
        ),
    );
    store_latency(table, &root);
}

/// Put (a new blob each time, fsynced) and get (read and verified) of
/// 1 MiB and 64 MiB blobs on the local file store.
fn store_latency(table: &mut Table, root: &Path) {
    let store = BlobStore::open_local(&root.join("latency-store")).expect("store");
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
            let started = Instant::now();
            let bytes = store.get(&digest).expect("get").expect("present");
            assert_eq!(bytes.len(), size);
            started.elapsed()
        });
        table.row(
            &format!("data: store put / get of a {label} blob (file://)"),
            format!("{} / {}", fmt_ms(put), fmt_ms(get)),
            "local disk, fsynced put; get verifies the digest. S3 (moto): not built yet",
        );
    }
}
