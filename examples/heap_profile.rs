//! Heap profiles, the `go tool pprof -base` way: a base snapshot, a workload, a second snapshot,
//! and the diff between them, biggest growers first.
//!
//! ```sh
//! cargo run --example heap_profile                      # writes target/heap.pb.gz and target/heap-base.pb.gz
//! cargo run --example heap_profile -- /tmp/heap.pb.gz   # or there (and /tmp/heap-base.pb.gz)
//! go tool pprof -top -lines target/heap.pb.gz
//! go tool pprof -top -lines -base target/heap-base.pb.gz target/heap.pb.gz
//! ```
//!
//! The workload is a small service: a session cache that only ever grows (the leak), and request
//! handling on a worker thread that allocates and frees a lot but keeps only a bounded ring of
//! recent responses (steady churn). The diff must name the cache's line first; the program exits
//! with an error if it does not.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;

/// Sessions are added on login and never removed: the leak.
struct SessionCache {
    sessions: HashMap<u64, Vec<u8>>,
}

impl SessionCache {
    #[inline(never)]
    fn login(&mut self, id: u64) {
        let state = vec![id as u8; 2048]; // grows
        self.sessions.insert(id, state);
    }
}

/// Request handling: temporary strings and buffers, and a ring of the last 64 responses.
struct Handler {
    recent: VecDeque<String>,
}

impl Handler {
    #[inline(never)]
    fn handle(&mut self, request: u64) {
        let path = format!("/api/items/{request}");
        let body: Vec<u8> = path.bytes().cycle().take(512).collect();
        let response = format!("200 OK {} bytes for {path}", body.len()); // churn
        self.recent.push_back(response);
        if self.recent.len() > 64 {
            self.recent.pop_front();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/heap.pb.gz"));
    let base_out = base_path(&out);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }

    let profiler = no_leak::profile::start()?;

    // The worker handles requests; a `u64::MAX` asks it to acknowledge.
    let (tx, rx) = mpsc::channel::<u64>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("handler".into())
        .spawn(move || {
            let mut handler = Handler {
                recent: VecDeque::new(),
            };
            for r in rx {
                if r == u64::MAX {
                    ack_tx.send(()).unwrap();
                } else {
                    handler.handle(r);
                }
            }
        })?;
    let mut cache = SessionCache {
        sessions: HashMap::new(),
    };
    let round = |cache: &mut SessionCache, logins, requests| {
        let first = cache.sessions.len() as u64;
        for id in first..first + logins {
            cache.login(id);
        }
        for r in 0..requests {
            tx.send(r).unwrap();
        }
        tx.send(u64::MAX).unwrap();
        ack_rx.recv().unwrap();
    };

    // Warm up (the ring fills, lazy statics settle), then the base snapshot.
    round(&mut cache, 100, 500);
    let base = profiler.snapshot();
    // The same workload again: the cache grows, the churn stays level.
    round(&mut cache, 400, 2000);
    let now = profiler.snapshot();
    let diff = now.diff(&base);

    println!("{now:.6}");
    println!("{diff:.6}");
    base.write_pprof(&base_out)?;
    now.write_pprof(&out)?;
    println!("wrote {} (base: {})", out.display(), base_out.display());
    println!(
        "  go tool pprof -top -lines -base {} {}",
        base_out.display(),
        out.display()
    );

    drop(tx);
    worker.join().unwrap();
    drop(profiler);

    // The growing site comes first.
    let want = include_str!("heap_profile.rs")
        .lines()
        .position(|l| l.ends_with("// grows"))
        .unwrap() as u32
        + 1;
    let first = diff.growing().next().and_then(|s| s.frame.as_ref());
    match first {
        Some(f)
            if f.file.as_deref() == Some("examples/heap_profile.rs") && f.line == Some(want) =>
        {
            println!("ok: the first growing site is {}", f.location());
            Ok(())
        }
        _ => Err(format!(
            "the first growing site should be examples/heap_profile.rs:{want}, got {:?}",
            first
        )
        .into()),
    }
}

/// `dir/name.pb.gz` -> `dir/name-base.pb.gz`.
fn base_path(out: &std::path::Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "heap.pb.gz".into());
    let base = match name.strip_suffix(".pb.gz") {
        Some(stem) => format!("{stem}-base.pb.gz"),
        None => format!("{name}.base"),
    };
    out.with_file_name(base)
}
