//! Benchmark guest: a WASI command that does nothing.

fn main() {}
