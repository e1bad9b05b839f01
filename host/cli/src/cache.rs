//! `wrun compile` and `wrun cache`: the artifact cache in `WRUN_HOME`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wrun_runtime::{Limits, Listed, Runtime};

use crate::args::{CacheCommand, CompileArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::module_source;
use wrun_jobs::Home;

pub(crate) fn compile(args: CompileArgs) -> Result<(), Fail> {
    let store = Home::from_env()?.store()?;
    let runtime =
        Runtime::with_store(Limits::default(), 1, store.clone()).or_fail(Code::Internal)?;
    for path in &args.modules {
        let loaded = module_source::load(path, false, Some(&store))?;
        let module = wrun_jobs::admit_one(&runtime, &loaded)?;
        println!(
            "{}: {} in {:.1} ms ({})",
            module.source(),
            module.origin(),
            module.load_time().as_secs_f64() * 1e3,
            module.digest()
        );
    }
    Ok(())
}

pub(crate) fn run(command: CacheCommand) -> Result<(), Fail> {
    let runtime = Runtime::with_store(Limits::default(), 1, Home::from_env()?.store()?)
        .or_fail(Code::Internal)?;
    let cache = runtime.cache().expect("a runtime with a store has a cache");
    match command {
        CacheCommand::Ls { json } => {
            let listed = cache.list().or_fail(Code::Internal)?;
            if json {
                let rows: Vec<Row> = listed.iter().map(Row::from).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).or_fail(Code::Internal)?
                );
            } else {
                print!("{}", table(&listed));
            }
        }
        CacheCommand::Gc { max_age, max_size } => {
            let removed = cache.gc(max_age, max_size).or_fail(Code::Internal)?;
            let freed: u64 = removed
                .iter()
                .map(|l| l.entry.artifact_size + l.entry.module_size)
                .sum();
            println!(
                "removed {} artifacts, {}",
                removed.len(),
                bytesize::ByteSize(freed)
            );
        }
        CacheCommand::Clear => {
            cache.clear().or_fail(Code::Internal)?;
            println!("cleared {}", Home::from_env()?.root().display());
        }
    }
    Ok(())
}

/// `cache ls --json` rows (field names are part of the interface).
#[derive(Debug, Serialize)]
struct Row<'a> {
    key: &'a str,
    module: &'a str,
    source: &'a str,
    module_size: u64,
    artifact_size: u64,
    compile_ms: f64,
    created: u64,
    last_used: u64,
    hits: u64,
}

impl<'a> From<&'a Listed> for Row<'a> {
    fn from(l: &'a Listed) -> Self {
        Row {
            key: &l.key,
            module: &l.entry.module,
            source: &l.entry.source,
            module_size: l.entry.module_size,
            artifact_size: l.entry.artifact_size,
            compile_ms: l.entry.compile_ms,
            created: l.entry.created,
            last_used: l.stats.last_used.max(l.entry.created),
            hits: l.stats.hits,
        }
    }
}

fn table(listed: &[Listed]) -> String {
    use std::fmt::Write;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age = |t: u64| {
        humantime::format_duration(std::time::Duration::from_secs(now.saturating_sub(t)))
            .to_string()
    };
    let mut text = format!(
        "{:<12}  {:>10}  {:>10}  {:>9}  {:>14}  {:>5}  source\n",
        "key", "module", "artifact", "compiled", "last used", "hits"
    );
    let mut total = 0;
    for l in listed {
        total += l.entry.module_size + l.entry.artifact_size;
        let _ = writeln!(
            text,
            "{:<12}  {:>10}  {:>10}  {:>7.0}ms  {:>14}  {:>5}  {}",
            &l.key[..12],
            bytesize::ByteSize(l.entry.module_size).to_string(),
            bytesize::ByteSize(l.entry.artifact_size).to_string(),
            l.entry.compile_ms,
            format!("{} ago", age(l.stats.last_used.max(l.entry.created))),
            l.stats.hits,
            l.entry.source
        );
    }
    let _ = writeln!(
        text,
        "{} artifacts, {} in total",
        listed.len(),
        bytesize::ByteSize(total)
    );
    text
}
