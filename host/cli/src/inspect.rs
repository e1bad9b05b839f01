//! `wrun inspect`: what a module is, without running it.

use serde::Serialize;
use wrun_runtime::{Limits, ModuleInfo, Runtime};

use crate::args::InspectArgs;
use crate::exit::{Code, Fail, OrFail};
use crate::module_source;

pub(crate) fn run(args: InspectArgs) -> Result<(), Fail> {
    let loaded = module_source::load(&args.module, false, None)?;
    let runtime = Runtime::new(Limits::default(), 1).or_fail(Code::Internal)?;
    let module = wrun_jobs::admit_one(&runtime, &loaded)?;
    let report = Report::new(module.source(), module.info());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).or_fail(Code::Internal)?
        );
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// The `--json` shape (stable: field names are part of the interface).
#[derive(Debug, Serialize)]
struct Report<'a> {
    module: &'a str,
    kind: &'static str,
    abi: Option<u32>,
    name: &'a str,
    version: &'a str,
    formats: &'a [String],
    unit: Option<&'static str>,
    size: usize,
    imports: Vec<Item>,
    exports: Vec<Item>,
}

#[derive(Debug, Serialize)]
struct Item {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

impl<'a> Report<'a> {
    fn new(source: &'a str, info: &'a ModuleInfo) -> Self {
        Report {
            module: source,
            kind: info.kind.as_str(),
            abi: info.abi,
            name: &info.name,
            version: &info.version,
            formats: &info.formats,
            unit: (info.kind == wrun_abi::Kind::Task).then_some(info.unit.as_str()),
            size: info.size,
            imports: info
                .imports
                .iter()
                .map(|i| Item {
                    name: format!("{}::{}", i.module, i.name),
                    ty: i.ty.clone(),
                })
                .collect(),
            exports: info
                .exports
                .iter()
                .map(|e| Item {
                    name: e.name.clone(),
                    ty: e.ty.clone(),
                })
                .collect(),
        }
    }

    fn text(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        let mut line = |key: &str, value: &str| {
            if !value.is_empty() {
                let _ = writeln!(text, "{key:<9} {value}");
            }
        };
        line("module", self.module);
        line("kind", self.kind);
        line("abi", &self.abi.map(|a| a.to_string()).unwrap_or_default());
        line("name", self.name);
        line("version", self.version);
        line("formats", &self.formats.join(", "));
        line("unit", self.unit.unwrap_or_default());
        line("size", &format!("{} bytes", self.size));
        for (title, items) in [("imports", &self.imports), ("exports", &self.exports)] {
            let _ = writeln!(text, "{title} ({}):", items.len());
            let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
            for item in items {
                let _ = writeln!(text, "  {:<width$}  {}", item.name, item.ty);
            }
        }
        text
    }
}
