//! Compile the builtin splitter plugins to wasm and embed them.

use std::fmt::Write;

/// Builtin format name → plugin package.
const PLUGINS: &[(&str, &str)] = &[
    ("lines", "wrun-plugin-lines"),
    ("fasta", "wrun-plugin-fasta"),
    ("fastq", "wrun-plugin-fastq"),
];

fn main() {
    let packages: Vec<&str> = PLUGINS.iter().map(|(_, package)| *package).collect();
    let artifacts = wrun_build_guests::build(&packages);
    let mut code = String::from("/// Builtin splitter plugins: (format name, wasm bytes).\n");
    code.push_str("pub(crate) const BUILTIN: &[(&str, &[u8])] = &[\n");
    for (name, package) in PLUGINS {
        let path = &artifacts[*package];
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out =
        std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("builtin_plugins.rs");
    std::fs::write(out, code).unwrap();
}
