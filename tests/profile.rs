//! Heap profiles: snapshots by allocation site, diffs that name the growing site, pprof output
//! that decodes back, and one profiler at a time.
//!
//! A profiler captures every thread of the process, so every test runs alone in a child process
//! (`#[no_leak::isolated]`), where the counts are exact.
//!
//! The lines that allocate carry a `// site: NAME` comment; the tests look their numbers up in
//! this file's own source.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use no_leak::profile::{self, StartError};

const FILE: &str = "tests/profile.rs";
const SOURCE: &str = include_str!("profile.rs");

/// The line that ends with `// site: NAME`.
fn site_line(name: &str) -> u32 {
    let mark = format!("// site: {name}");
    SOURCE
        .lines()
        .position(|l| l.ends_with(&mark))
        .unwrap_or_else(|| panic!("no line marked {mark}")) as u32
        + 1
}

const ENTRY: usize = 1000;
const CHURN: usize = 300;
const RING: usize = 16;

/// The leak: a cache that only grows.
#[inline(never)]
fn grow(cache: &mut Vec<Box<[u8]>>, n: usize) {
    for i in 0..n {
        let entry = vec![i as u8; ENTRY].into_boxed_slice(); // site: grow
        cache.push(entry);
    }
}

/// Steady churn: a bounded ring of buffers, each replaced as new ones come.
#[inline(never)]
fn churn(ring: &mut VecDeque<Vec<u8>>, n: usize) {
    for i in 0..n {
        let buf = vec![i as u8; CHURN]; // site: churn
        ring.push_back(buf);
        if ring.len() > RING {
            ring.pop_front();
        }
    }
}

#[test]
#[no_leak::isolated]
fn diff_names_the_growing_site_first() {
    let profiler = profile::start().unwrap();
    let mut cache = Vec::new();
    let mut ring = VecDeque::new();
    grow(&mut cache, 50);
    churn(&mut ring, 100);
    let base = profiler.snapshot();
    grow(&mut cache, 200);
    churn(&mut ring, 500);
    let now = profiler.snapshot();
    let diff = now.diff(&base);
    println!("{base}\n{now}\n{diff}");

    let grow_line = site_line("grow");
    let first = &diff.sites[0];
    let frame = first.frame.as_ref().expect("resolved");
    assert_eq!(frame.file.as_deref(), Some(FILE), "{diff}");
    assert_eq!(frame.line, Some(grow_line), "{diff}");
    assert!(frame.function.ends_with("::grow"), "{frame:?}");
    assert_eq!(
        (first.delta_bytes(), first.delta_blocks()),
        (200 * ENTRY as i64, 200),
        "{diff}"
    );
    // Exact, not sampled: every entry allocated since the profiler started is there.
    let site = now.site_at(FILE, grow_line).unwrap();
    assert_eq!((site.bytes, site.blocks), (250 * ENTRY as u64, 250));
    let site = base.site_at(FILE, grow_line).unwrap();
    assert_eq!((site.bytes, site.blocks), (50 * ENTRY as u64, 50));
    // The callers are kept.
    assert!(
        first
            .context
            .iter()
            .any(|c| c.function.contains("diff_names_the_growing_site_first")),
        "{first:?}"
    );

    // The churn is there in both snapshots, unchanged.
    let churn = diff.site_at(FILE, site_line("churn")).expect("churn site");
    assert_eq!(
        (churn.base_bytes, churn.bytes),
        ((RING * CHURN) as i64, (RING * CHURN) as i64)
    );
    assert!(!churn.grew() && !churn.shrank(), "{churn:?}");
    assert!(diff.growing().all(|s| s.location() != churn.location()));

    // The table names the growing site on its first row.
    let text = diff.to_string();
    let row = text
        .lines()
        .find(|l| l.contains(FILE))
        .expect("a row of this file");
    assert!(
        row.contains(&format!("{FILE}:{grow_line} (")) && row.contains("+200000"),
        "{text}"
    );
    assert!(text.starts_with("heap diff: +"), "{text}");
    drop((cache, ring));
}

#[test]
#[no_leak::isolated]
fn steady_workload_shows_no_growth() {
    let profiler = profile::start().unwrap();
    let mut ring = VecDeque::new();
    churn(&mut ring, 100);
    let base = profiler.snapshot();
    churn(&mut ring, 2000);
    let now = profiler.snapshot();
    let diff = now.diff(&base);
    println!("{diff}");
    let churn_line = site_line("churn");
    let site = diff.site_at(FILE, churn_line).expect("churn site");
    assert_eq!((site.delta_bytes(), site.delta_blocks()), (0, 0), "{diff}");
    assert_eq!(site.bytes, (RING * CHURN) as i64);
    // Nothing the workload allocates grows (libtest's main thread, waiting for the test in the
    // same process, may: it is captured too).
    assert!(
        !diff.growing().any(|s| s.frame.as_ref().is_some_and(
            |f| f.function.contains("churn") || f.function.contains("steady_workload")
        )),
        "{diff}"
    );
    drop(ring);
}

#[test]
#[no_leak::isolated]
fn shrinking_and_vanished_sites_come_last() {
    let profiler = profile::start().unwrap();
    let mut cache = Vec::new();
    let mut ring = VecDeque::new();
    grow(&mut cache, 40);
    let base = profiler.snapshot();
    drop(cache);
    churn(&mut ring, 10);
    let now = profiler.snapshot();
    let diff = now.diff(&base);
    println!("{diff}");
    // Growers first, then the sites that shrank, the biggest shrink first.
    let first_shrink = diff.sites.iter().position(|s| s.shrank()).unwrap();
    assert!(diff.sites[..first_shrink].iter().all(|s| !s.shrank()));
    assert!(
        diff.sites[first_shrink..].iter().all(|s| s.shrank()),
        "{diff}"
    );
    let gone = &diff.sites[first_shrink];
    assert_eq!(gone.location(), format!("{FILE}:{}", site_line("grow")));
    assert_eq!((gone.base_blocks, gone.blocks), (40, 0));
    assert_eq!(gone.delta_bytes(), -40 * ENTRY as i64);
    assert_eq!(diff.shrinking().next().unwrap(), gone);
    assert_eq!(
        diff.growing().next().unwrap().location(),
        format!("{FILE}:{}", site_line("churn"))
    );
    assert!(now.site_at(FILE, site_line("grow")).is_none());
    assert!(diff.to_string().contains("shrank or freed:"), "{diff}");
    drop(ring);
}

#[test]
#[no_leak::isolated]
fn every_thread_is_captured() {
    let profiler = profile::start().unwrap();
    let base = profiler.snapshot();
    let cache = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || grow(&mut cache.lock().unwrap(), 30))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let diff = profiler.snapshot().diff(&base);
    println!("{diff}");
    let site = diff.site_at(FILE, site_line("grow")).unwrap();
    assert_eq!(
        (site.delta_bytes(), site.delta_blocks()),
        (90 * ENTRY as i64, 90)
    );
    assert_eq!(diff.sites[0], *site, "{diff}");
    drop(cache);
}

#[test]
#[no_leak::isolated]
fn only_one_profiler_at_a_time() {
    let first = profile::start().unwrap();
    assert_eq!(profile::start().unwrap_err(), StartError::Busy);
    // Another thread is refused at once too, without waiting.
    let other = std::thread::spawn(|| profile::start().err())
        .join()
        .unwrap();
    assert_eq!(other, Some(StartError::Busy));
    assert!(StartError::Busy.to_string().contains("only one"));
    drop(first);
    let again = profile::start().expect("free again once the first is dropped");
    drop(again);
}

#[test]
#[no_leak::isolated]
fn snapshot_table_lists_sites_biggest_first() {
    let profiler = profile::start().unwrap();
    let mut cache = Vec::new();
    let mut ring = VecDeque::new();
    grow(&mut cache, 20);
    churn(&mut ring, 20);
    let snap = profiler.snapshot();
    let text = format!("{snap}");
    println!("{text}");
    assert!(text.starts_with("heap profile: "), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(FILE)).collect();
    assert!(
        rows[0].contains(&format!("{FILE}:{} (", site_line("grow"))),
        "{text}"
    );
    assert!(rows
        .iter()
        .any(|r| r.contains(&format!("{FILE}:{} (", site_line("churn")))));
    assert_eq!(snap.sites[0].bytes, 20 * ENTRY as u64, "{text}");
    assert_eq!(snap.bytes, snap.sites.iter().map(|s| s.bytes as i64).sum());
    assert_eq!(snap.bytes, snap.stacks.iter().map(|s| s.bytes).sum());
    // `{:.1}` shows one row.
    let one = format!("{snap:.1}");
    assert_eq!(one.lines().filter(|l| l.contains(" (")).count(), 1, "{one}");
    // The whole stack is kept, std folded away: the site first, then its callers.
    let stack = &snap.stacks[0];
    assert_eq!(stack.frames[0].line, Some(site_line("grow")), "{stack:?}");
    assert!(
        stack.frames.iter().any(|f| f
            .function
            .ends_with("snapshot_table_lists_sites_biggest_first")),
        "{stack:?}"
    );
    assert!(
        !stack
            .frames
            .iter()
            .any(|f| f.function.starts_with("alloc::")),
        "{stack:?}"
    );
    drop((cache, ring));
}

#[cfg(feature = "pprof")]
mod pprof {
    use super::*;
    use no_leak::profile::proto::Profile;
    use std::collections::HashMap;

    #[test]
    #[no_leak::isolated]
    fn pprof_bytes_decode_back() {
        let profiler = profile::start().unwrap();
        let mut cache = Vec::new();
        let mut ring = VecDeque::new();
        grow(&mut cache, 64);
        churn(&mut ring, 64);
        let snap = profiler.snapshot();
        let bytes = snap.to_pprof_bytes();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
        let p = Profile::from_pprof_bytes(&bytes).unwrap();
        assert_eq!(p, snap.to_pprof());

        // Strings: entry 0 is "", every index is in range.
        assert_eq!(p.string_table[0], "");
        let n = p.string_table.len() as i64;
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| (p.string(t.r#type), p.string(t.unit)))
            .collect();
        assert_eq!(
            types,
            [("inuse_objects", "count"), ("inuse_space", "bytes")]
        );
        assert_eq!(p.string(p.default_sample_type), "inuse_space");
        assert_eq!(p.period, 1);
        assert!(p.time_nanos > 0);
        assert_eq!(p.mapping.len(), 1);
        assert!(p.mapping[0].has_functions && p.mapping[0].has_line_numbers);
        for f in &p.function {
            assert!((0..n).contains(&f.name) && (0..n).contains(&f.filename));
        }

        // Ids are unique and every reference resolves.
        let functions: HashMap<u64, _> = p.function.iter().map(|f| (f.id, f)).collect();
        let locations: HashMap<u64, _> = p.location.iter().map(|l| (l.id, l)).collect();
        assert_eq!(functions.len(), p.function.len());
        assert_eq!(locations.len(), p.location.len());
        assert!(!functions.contains_key(&0) && !locations.contains_key(&0));
        for l in &p.location {
            assert_eq!(l.mapping_id, 1);
            assert!(!l.line.is_empty());
            for line in &l.line {
                assert!(functions.contains_key(&line.function_id));
            }
        }

        // Values add up to the snapshot, sample by sample.
        assert_eq!(p.sample.len(), snap.stacks.len());
        let (mut blocks, mut bytes) = (0, 0);
        for (s, stack) in p.sample.iter().zip(&snap.stacks) {
            assert_eq!(s.value, [stack.blocks, stack.bytes]);
            blocks += s.value[0];
            bytes += s.value[1];
            // Leaf first, each location the frame of the stack at the same place.
            assert_eq!(s.location_id.len(), stack.frames.len());
            for (id, frame) in s.location_id.iter().zip(&stack.frames) {
                let loc = locations[id];
                let f = functions[&loc.line[0].function_id];
                assert_eq!(p.string(f.name), frame.function);
                assert_eq!(
                    p.string(f.filename),
                    frame.file.as_deref().unwrap_or_default()
                );
                assert_eq!(loc.line[0].line, i64::from(frame.line.unwrap_or(0)));
            }
        }
        assert_eq!((blocks, bytes), (snap.blocks, snap.bytes));

        // The growing site: a sample whose leaf is the `grow` line, with the test as a caller.
        let grow_line = site_line("grow") as i64;
        let leaf = |s: &no_leak::profile::proto::Sample| {
            let loc = locations[&s.location_id[0]];
            let f = functions[&loc.line[0].function_id];
            (p.string(f.filename).to_string(), loc.line[0].line)
        };
        let grown: Vec<_> = p
            .sample
            .iter()
            .filter(|s| leaf(s) == (FILE.to_string(), grow_line))
            .collect();
        assert_eq!(
            grown.iter().map(|s| s.value[1]).sum::<i64>(),
            64 * ENTRY as i64
        );
        assert!(grown.iter().all(|s| s.location_id.iter().any(|id| {
            let f = functions[&locations[id].line[0].function_id];
            p.string(f.name).ends_with("pprof_bytes_decode_back")
        })));

        // And the file says the same.
        let dir = std::env::temp_dir().join(format!("no_leak-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("heap.pb.gz");
        snap.write_pprof(&path).unwrap();
        let read = Profile::from_pprof_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read, p);
        std::fs::remove_dir_all(&dir).unwrap();
        drop((cache, ring));
    }
}
