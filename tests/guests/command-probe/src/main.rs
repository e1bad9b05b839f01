//! Test guest: a WASI command whose behaviour is its first argument
//! (except on input that starts with `ok:`, which it echoes).

use std::io::{self, Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("cat");
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input).expect("stdin");
    // Input marked `ok:` is echoed whatever the mode, so that a test can
    // fail one chunk of a job and not the others.
    if input.starts_with(b"ok:") {
        io::stdout().write_all(&input).expect("stdout");
        return;
    }
    match mode {
        "cat" => io::stdout().write_all(&input).expect("stdout"),
        "exit" => {
            eprintln!("probe exiting on purpose");
            let code = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(3);
            std::process::exit(code);
        }
        "panic" => panic!("probe panicked on purpose"),
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sandbox" => {
            // Every ambient capability must be absent.
            let file = std::fs::read("/etc/passwd").is_ok();
            let dir = std::fs::read_dir(".").is_ok();
            let env = std::env::vars().count();
            println!("file={file} dir={dir} env={env} args={}", args.len());
        }
        "flood" => {
            let block = [b'y'; 65536];
            let mut out = io::stdout().lock();
            loop {
                if out.write_all(&block).is_err() {
                    std::process::exit(99);
                }
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
