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
        "data-cat" => {
            // A reference data file, copied to the output.
            let name = args.get(2).expect("data-cat NAME");
            let mut file = std::fs::File::open(format!("/data/{name}")).expect("open /data/NAME");
            io::copy(&mut file, &mut io::stdout().lock()).expect("copy");
        }
        "data-escape" => {
            // Everything a task might try beyond reading /data: each line
            // says whether it worked.
            let read = |path: &str| std::fs::read(path).is_ok();
            println!(
                "read /data/{}={}",
                args[2],
                read(&format!("/data/{}", args[2]))
            );
            for path in [
                "/etc/passwd",
                "/data/../etc/passwd",
                "/data/../../proc/self/environ",
                "/",
                ".",
                "/tmp",
            ] {
                println!(
                    "read {path}={}",
                    read(path) || std::fs::read_dir(path).is_ok()
                );
            }
            let listed: Vec<String> = std::fs::read_dir("/data")
                .map(|dir| {
                    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            println!("list /data={listed:?}");
            let write = std::fs::OpenOptions::new()
                .append(true)
                .open(format!("/data/{}", args[2]))
                .is_ok();
            println!("append /data/{}={write}", args[2]);
            println!(
                "create /data/new={}",
                std::fs::write("/data/new", b"x").is_ok()
            );
            println!(
                "mkdir /data/dir={}",
                std::fs::create_dir("/data/dir").is_ok()
            );
            println!(
                "remove /data/{}={}",
                args[2],
                std::fs::remove_file(format!("/data/{}", args[2])).is_ok()
            );
            let named = format!("/data/{}", args[2]);
            println!(
                "rename /data/{}={}",
                args[2],
                std::fs::rename(&named, "/data/moved").is_ok()
            );
            println!(
                "link /data/copy={}",
                std::fs::hard_link(&named, "/data/copy").is_ok()
            );
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
