//! Reading a module: a `.wasm` file, or a guest crate built on the fly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wrun_jobs::ModuleBytes;
use wrun_store::BlobStore;

use crate::exit::{Code, Fail, OrFail};

/// The target guests are built for.
const TARGET: &str = "wasm32-wasip1";

/// The code generation flags every guest is built with, whatever
/// `.cargo/config.toml` the shell sits under: wasm SIMD (wasmtime runs it;
/// the SDK's and plugins' `memchr` scans depend on it for speed).
const GUEST_RUSTFLAGS: &str = "-Ctarget-feature=+simd128";

/// Read `path`: a wasm file, or a crate directory that is built first with
/// `cargo build --release --target wasm32-wasip1`. With a `store`, the
/// file's digest is remembered there by its stamp (a large module is not
/// hashed at every job).
pub(crate) fn load(
    path: &Path,
    verbose: bool,
    store: Option<&BlobStore>,
) -> Result<ModuleBytes, Fail> {
    let wasm = if path.is_dir() {
        build_crate(path, verbose)?
    } else {
        path.to_path_buf()
    };
    let source = wasm.display().to_string();
    Ok(ModuleBytes::read(&wasm, source, store)?)
}

/// Build the crate in `dir` for wasm and return its `.wasm` artifact.
fn build_crate(dir: &Path, verbose: bool) -> Result<PathBuf, Fail> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Fail::new(
            Code::Module,
            anyhow::anyhow!(
                "{}: a directory, but not a crate (no Cargo.toml)",
                dir.display()
            ),
        ));
    }
    let manifest = manifest.canonicalize().or_fail(Code::Module)?;
    let crate_dir = manifest.parent().expect("a manifest is in a directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // The same bytes from any directory: cargo and rustup read their
    // configuration and toolchain from the crate's directory, not the
    // shell's, and the flags a guest needs are set here, not inherited.
    command
        .current_dir(crate_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", GUEST_RUSTFLAGS)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !verbose {
        command.arg("--quiet");
    }
    let built = || format!("cannot build {} for {TARGET}", dir.display());
    let output = command.output().or_fail_with(Code::Module, built)?;
    if !output.status.success() {
        return Err(Fail::new(
            Code::Module,
            anyhow::anyhow!("{}: cargo failed (see its messages above)", built()),
        ));
    }
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["manifest_path"].as_str() == manifest.to_str()
        {
            let files = message["filenames"].as_array().into_iter().flatten();
            if let Some(file) = files
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
            {
                wasm = Some(PathBuf::from(file));
            }
        }
    }
    wasm.ok_or_else(|| {
        Fail::new(
            Code::Module,
            anyhow::anyhow!(
                "{}: the crate builds no .wasm (a guest needs `crate-type = [\"cdylib\"]` or a binary)",
                dir.display()
            ),
        )
    })
}
