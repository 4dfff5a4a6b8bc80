//! Whole reports, compared line for line: the layout is what people read in CI logs.

use super::units::size;
use crate::check::config::Config;
use crate::check::report::{Dimension, Measure, PerMeasure, Report, RunDelta, WindowGrowth};
use crate::counting::census::{FdInfo, ThreadInfo};
use crate::counting::heap::Scope;
use crate::diagnosis::retention::{HeldBy, Holder};
use crate::diagnosis::sites::{Frame, Site};

fn frame(function: &str, line: u32) -> Frame {
    Frame {
        function: function.into(),
        file: Some("src/bus.rs".into()),
        line: Some(line),
    }
}

fn site(bytes: u64, blocks: u64, line: u32) -> Site {
    Site {
        bytes,
        blocks,
        frame: Some(frame("bus::subscribe", line)),
        context: vec![
            frame("bus::tests::leaks", line + 100),
            frame("bus::main", 1),
        ],
        spawns_thread: false,
        c_heap: false,
        held_by: None,
    }
}

fn report(cfg: Config) -> Report {
    let mut r = Report::new("bus::tests::leaks".into(), cfg, Scope::Process);
    // Off glibc with the feature `ffi` a new report says the C heap is not measured; these
    // reports are about other lines.
    r.c_heap_not_measured = None;
    r.counts[Measure::Bytes] = Some((1000, 1664).into());
    r.counts[Measure::Blocks] = Some((10, 25).into());
    r.per_run = vec![
        RunDelta {
            bytes: 133,
            blocks: 3,
            peak_bytes: None,
        };
        5
    ];
    r.counts[Measure::Threads] = Some((2, 2).into());
    r.counts[Measure::Fds] = Some((4, 4).into());
    r
}

fn heap_leak() -> Report {
    let mut r = report(Config::new());
    r.exceeded = vec![Dimension::Heap];
    r.over_bound[Measure::Bytes] = true;
    r.over_bound[Measure::Blocks] = true;
    let mut net = PerMeasure::splat(None);
    net[Measure::Bytes] = Some(1064);
    net[Measure::Blocks] = Some(24);
    net[Measure::Threads] = Some(0);
    net[Measure::Fds] = Some(0);
    r.confirmations = vec![WindowGrowth { runs: 8, net }];
    r.sites = vec![site(400, 5, 131), site(200, 5, 140), site(40, 3, 150)];
    r.sites.extend([site(16, 1, 160), site(8, 1, 170)]);
    r.sites[0].held_by = Some(HeldBy {
        holder: Holder::Static("bus::SUBSCRIBERS".into()),
        via: vec![frame("bus::register", 20)],
        blocks: 5,
    });
    r
}

#[test]
fn a_heap_leak_says_where_in_its_title_and_lists_three_sites_with_one_caller() {
    assert_eq!(
        heap_leak().to_string(),
        "\
no_leak: `bus::tests::leaks` leaked heap: +664 B, +15 blocks at src/bus.rs:131
  heap:      +664 B, +15 blocks over 5 runs (bounds: 0 B, 0 blocks)
  per run:   +133/+3, +133/+3, +133/+3, +133/+3, +133/+3  (B/blocks)
  live:      1000 B, 10 blocks -> 1664 B, 25 blocks
  confirmed: grew again in 1 more window: +1064 B/+24 blocks in 8 runs
  threads:   2 -> 2 (0, bound: 0)
  fds:       4 -> 4 (0, bound: 0)
  sites:     live after one more run, by allocating line (3 of 5):
    - 400 B in 5 blocks at src/bus.rs:131 (bus::subscribe)
        held by static bus::SUBSCRIBERS, via src/bus.rs:20
        from src/bus.rs:231 (bus::tests::leaks)
    - 200 B in 5 blocks at src/bus.rs:140 (bus::subscribe)
        from src/bus.rs:240 (bus::tests::leaks)
    - 40 B in 3 blocks at src/bus.rs:150 (bus::subscribe)
        from src/bus.rs:250 (bus::tests::leaks)
    - and 2 more sites (24 B in 2 blocks; NO_LEAK_SITES=all lists them)
  config:    warmup = 3, runs = 5, counted: whole process
  hint:      it grew again in every window, so it is not one-time growth
  expected?  allow it: #[no_leak(max_bytes = 664, max_blocks = 15)]
  skip all:  NO_LEAK=off"
    );
}

#[test]
fn a_thread_leak_without_heap_growth_points_at_the_spawn() {
    let mut r = report(Config::new());
    r.counts[Measure::Bytes] = Some((1000, 1000).into());
    r.counts[Measure::Blocks] = Some((10, 10).into());
    r.per_run = vec![
        RunDelta {
            bytes: 0,
            blocks: 0,
            peak_bytes: None
        };
        5
    ];
    r.counts[Measure::Threads] = Some((2, 7).into());
    r.counts[Measure::Fds] = Some((4, 9).into());
    r.exceeded = vec![Dimension::Threads, Dimension::Fds];
    r.over_bound[Measure::Threads] = true;
    r.over_bound[Measure::Fds] = true;
    r.new_threads = (10..15)
        .map(|tid| ThreadInfo {
            tid,
            name: "worker".into(),
            state: "sleeping".into(),
        })
        .collect();
    r.new_fds = (20..25)
        .map(|fd| FdInfo {
            fd,
            target: "pipe:[1]".into(),
        })
        .collect();
    let mut spawn = site(64, 1, 40);
    spawn.spawns_thread = true;
    r.sites = vec![site(128, 2, 30), spawn];
    let text = r.to_string();
    let (one, many) = crate::counting::census::FD_WORDS;
    let expected = format!(
        "\
no_leak: `bus::tests::leaks` leaked threads, fds: +5 threads, +5 {many} at src/bus.rs:40
  heap:      0 B, 0 blocks over 5 runs (bounds: 0 B, 0 blocks)
  per run:   0/0, 0/0, 0/0, 0/0, 0/0  (B/blocks)
  live:      1000 B, 10 blocks -> 1000 B, 10 blocks
  threads:   2 -> 7 (+5, bound: 0)
  fds:       4 -> 9 (+5, bound: 0)
  new threads:
    - 5 x \"worker\" sleeping (tids 10, 11, 12, 13, 14)
    spawned at src/bus.rs:40 (bus::subscribe)
  new {many}:
    - 5 x -> pipe:[1] ({many} 20, 21, 22, 23, 24)
  sites:     live after one more run, by allocating line (2 of 2):
    - 128 B in 2 blocks at src/bus.rs:30 (bus::subscribe)
        from src/bus.rs:130 (bus::tests::leaks)
    - 64 B in 1 block at src/bus.rs:40 (bus::subscribe)
        from src/bus.rs:140 (bus::tests::leaks)
  config:    warmup = 3, runs = 5, counted: whole process
  hint:      it grew again in every window, so it is not one-time growth
  expected?  allow it: #[no_leak(max_threads = 5, max_fds = 5)]
  skip all:  NO_LEAK=off"
    );
    let _ = one;
    assert_eq!(text, expected);
}

#[test]
fn more_sites_are_listed_when_asked() {
    let text = heap_leak().to_string();
    assert_eq!(text.matches("\n    - ").count(), 4, "{text}");
    // NO_LEAK_SITES is read per report; this process never sets it, so the default holds.
    assert!(std::env::var_os(crate::check::env::SITES_VAR).is_none());
}

#[test]
fn mapped_shows_where_measured_with_its_hint() {
    let mut r = report(Config::new());
    r.counts[Measure::Mapped] = Some((16 << 10, (16 << 10) + (5 << 20)).into());
    r.exceeded = vec![Dimension::Mapped];
    r.over_bound[Measure::Mapped] = true;
    let text = r.to_string();
    assert!(
        text.starts_with("no_leak: `bus::tests::leaks` leaked mapped: +5 MiB mapped\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  mapped:    16 KiB -> 5136 KiB (+5 MiB, bound: 0 B)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  expected?  allow it: #[no_leak(max_mapped_bytes = 5242880)]\n"),
        "{text}"
    );
    assert_eq!(size(5 << 20), "5 MiB");
}

#[test]
fn mapped_is_left_out_where_not_measured_unless_bounded() {
    let unmeasured = |cfg| {
        let mut r = report(cfg);
        let why = crate::counting::mapped::not_measured_reason();
        r.not_measured.push((Dimension::Mapped, why.into()));
        r.to_string()
    };
    let text = unmeasured(Config::new());
    assert!(!text.contains("mapped"), "{text}");
    let text = unmeasured(Config::new().max_mapped_bytes(4096));
    assert!(text.contains("\n  mapped:    not measured ("), "{text}");
}

#[test]
fn c_sites_and_an_unmeasured_c_heap_are_said() {
    let mut r = report(Config::new());
    r.c_heap_not_measured = Some("not glibc");
    let mut c = site(16, 1, 3);
    c.c_heap = true;
    c.context.clear();
    r.sites = vec![c];
    let text = r.to_string();
    assert!(
        text.contains("  C heap:    not measured: not glibc\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n    - 16 B in 1 block of C heap at src/bus.rs:3 (bus::subscribe)\n  config:"
        ),
        "{text}"
    );
}
