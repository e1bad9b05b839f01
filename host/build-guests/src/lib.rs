//! Build guest crates of this workspace to WebAssembly from a build script.
//!
//! wrun embeds its splitter plugins in the binary, and its end-to-end tests
//! need probe guests; both are workspace crates compiled for
//! `wasm32-wasip1`, the way wasmtime's `test-programs` builds its guests.
//! A build script calls [`build`] with package names; it runs a nested
//! `cargo build --release --target wasm32-wasip1` into a directory of its
//! own (so it never waits on the outer build's lock), and returns where each
//! package's `.wasm` landed.
//!
//! The nested build always uses the release profile: guests built in debug
//! mode run orders of magnitude slower and would make tests slow, not
//! faster. Build scripts of one profile share one nested target directory,
//! so each guest is compiled once.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target guests are compiled for.
pub const TARGET: &str = "wasm32-wasip1";

/// Compile `packages` for [`TARGET`] and return each package's `.wasm`,
/// keyed by package name. Prints the `rerun-if-changed` lines that make the
/// calling build script run again when any workspace source they use
/// changes.
///
/// # Panics
///
/// When not run from a build script, or when the nested build fails (the
/// panic message carries cargo's diagnostics): a build script has no better
/// way to fail.
pub fn build(packages: &[&str]) -> BTreeMap<String, PathBuf> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR: not in a build script"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR has the cargo layout")
        .join("wasm-guests");

    let mut command = Command::new(cargo);
    command
        .current_dir(&manifest_dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the
    // host crates, not for guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("run cargo for the wasm guests");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed") {
            "\nhint: run `rustup toolchain install` in the repository to add the wasm32-wasip1 target \
             listed in rust-toolchain.toml"
        } else {
            ""
        };
        panic!("building wasm guests {packages:?} failed:\n{stderr}{hint}");
    }

    let workspace = workspace_root(&manifest_dir);
    let mut artifacts = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let Some(dir) = message["manifest_path"]
            .as_str()
            .map(Path::new)
            .and_then(Path::parent)
            && dir.starts_with(&workspace)
        {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        let name = message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('_', "-");
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm
            && packages.contains(&name.as_str())
        {
            artifacts.insert(name, PathBuf::from(wasm));
        }
    }
    for package in packages {
        assert!(
            artifacts.contains_key(*package),
            "cargo produced no .wasm for {package}"
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    artifacts
}

/// [`build`] the packages, then expose each `.wasm` path to the calling
/// crate as the environment variable paired with it (read with `env!`).
pub fn build_and_export(guests: &[(&str, &str)]) {
    let packages: Vec<&str> = guests.iter().map(|(package, _)| *package).collect();
    let artifacts = build(&packages);
    for (package, var) in guests {
        println!("cargo:rustc-env={var}={}", artifacts[*package].display());
    }
}

/// The directory of the workspace's root `Cargo.toml`: the highest ancestor
/// of `dir` that has one.
fn workspace_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .filter(|d| d.join("Cargo.toml").is_file())
        .last()
        .unwrap_or(dir)
        .to_path_buf()
}
