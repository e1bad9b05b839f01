//! Golden tests: the scripts wrun renders for each batch system, and what
//! it reads in each system's recorded listings (`samples/`), failure states
//! included. `WRUN_BLESS=1` rewrites the golden files (then review the
//! diff).

use std::path::{Path, PathBuf};
use std::time::Duration;

use wrun_alloc::{BatchState, Observed, Queue, QueueSpec, Script, System};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(dir("samples").join(name)).expect("read sample")
}

fn assert_golden(name: &str, actual: &str) {
    let golden = dir("golden").join(name);
    if std::env::var_os("WRUN_BLESS").is_some() {
        std::fs::write(&golden, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (WRUN_BLESS=1 creates it)", golden.display()));
    assert_eq!(actual, expected, "differs from {}", golden.display());
}

fn script() -> Script<'static> {
    Script {
        job_name: "wrun-q",
        wrun: Path::new("/opt/wrun/bin/wrun"),
        connect: "tcp://10.0.0.1:7878",
        key: Some(Path::new("/home/alice/it's/cluster.key")),
        slots: 4,
        time: Duration::from_secs(5400),
        idle_timeout: Duration::from_secs(300),
        log_dir: Path::new("/home/alice/.wrun/broker/alloc/q"),
    }
}

/// The listing read back, one job a line.
fn parsed(system: System, listing: &str) -> String {
    let jobs = system.driver().parse(listing).expect("parses");
    jobs.iter()
        .map(|job| format!("{} {} {:?}\n", job.id, job.name, job.state))
        .collect()
}

#[test]
fn scripts() {
    for system in [System::Slurm, System::Sge, System::Pbs] {
        let text = system.driver().render(&script());
        assert_golden(&format!("{}.sh", system.name()), &text);
    }
}

#[test]
fn a_loopback_script_passes_no_key() {
    let script = Script {
        key: None,
        ..script()
    };
    assert!(!System::Slurm.driver().render(&script).contains("--key"));
}

#[test]
fn squeue() {
    assert_golden(
        "squeue.parsed",
        &parsed(System::Slurm, &sample("squeue.txt")),
    );
    assert_eq!(parsed(System::Slurm, ""), "");
    let bad = System::Slurm.driver().parse("12 RUNNING").unwrap_err();
    assert_eq!(
        bad.to_string(),
        "cannot read the output of squeue: expected id|name|state|reason, got \"12 RUNNING\""
    );
}

#[test]
fn qstat_sge() {
    let text = [
        "qstat-sge.xml",
        "qstat-sge-error.xml",
        "qstat-sge-empty.xml",
    ]
    .map(|name| format!("# {name}\n{}", parsed(System::Sge, &sample(name))))
    .concat();
    assert_golden("qstat-sge.parsed", &text);
    let bad = System::Sge
        .driver()
        .parse("<job_info><job_list><state>r</state></job_list>");
    assert_eq!(
        bad.unwrap_err().to_string(),
        "cannot read the output of qstat -xml: a job_list without JB_job_number or state (job \"\")"
    );
}

#[test]
fn qstat_pbs() {
    assert_golden(
        "qstat-pbs.parsed",
        &parsed(System::Pbs, &sample("qstat-pbs.json")),
    );
    assert!(System::Pbs.driver().parse("Jobs:").is_err());
}

#[test]
fn alloc_ls() {
    let spec = QueueSpec {
        name: "q".into(),
        system: System::Slurm,
        broker: "tcp://10.0.0.1:7878".into(),
        time: Duration::from_secs(3600),
        max_nodes: 4,
        slots: 2,
        backlog: 1,
        idle_timeout: Duration::from_secs(300),
        extra: vec!["--partition=short".into()],
    };
    let mut active = Queue::new(spec.clone());
    active.submitted("11".into(), 1_000);
    active.connected("11", 0);
    active.submitted("12".into(), 2_000);
    active.observe(
        &[Observed {
            id: "12".into(),
            name: "wrun-q".into(),
            state: BatchState::Failed("FAILED (NonZeroExitCode)".into()),
        }],
        3_000,
    );
    let mut paused = Queue::new(QueueSpec {
        name: "gpu".into(),
        system: System::Sge,
        ..spec
    });
    for _ in 0..3 {
        paused.submit_failed("qsub failed (exit status: 1): Unable to run job");
    }
    let queues = [active, paused];
    assert_golden("alloc-ls.txt", &wrun_alloc::view::table(&queues));
    assert_golden(
        "alloc-ls.json",
        &(serde_json::to_string_pretty(&queues).unwrap() + "\n"),
    );
    assert_eq!(
        wrun_alloc::view::table(&[]),
        "no allocation queues (add one with `wrun alloc add`)\n"
    );
}

#[test]
fn submit_outputs() {
    let id = |system: System, name: &str| system.driver().submitted(&sample(name)).unwrap();
    assert_eq!(id(System::Slurm, "sbatch-parsable.txt"), "7");
    assert_eq!(id(System::Sge, "qsub-terse.txt"), "6");
    assert_eq!(id(System::Pbs, "qsub-pbs.txt"), "101.pbs01");
    let none = System::Slurm.driver().submitted("").unwrap_err();
    assert_eq!(none.to_string(), "sbatch printed no job id: \"\"");
}

#[test]
fn command_lines() {
    let line = |command: std::process::Command| {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let extra = ["--partition=debug".to_owned()];
    let slurm = System::Slurm.driver();
    assert_eq!(
        line(slurm.submit(Path::new("/s.sh"), &extra)),
        "sbatch --parsable --partition=debug /s.sh"
    );
    assert_eq!(
        line(slurm.poll("wrun-q")),
        "squeue -h -t all -n wrun-q -o %i|%j|%T|%r"
    );
    assert_eq!(
        line(System::Sge.driver().submit(Path::new("/s.sh"), &[])),
        "qsub -terse /s.sh"
    );
    assert_eq!(
        line(System::Pbs.driver().poll("wrun-q")),
        "qstat -f -F json -x"
    );
    assert_eq!(line(System::Sge.driver().cancel("6")), "qdel 6");
}
