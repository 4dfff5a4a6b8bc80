//! Soak detection limits: the smallest leak rate a 10,000-iteration soak catches, and false flags
//! on steady workloads over repeated soaks.
//!
//! `cargo run --release --example soak_limits [ROUNDS]` (default 30 rounds of each steady
//! workload). Exits with status 1 on any false flag or if 0.16 B/iteration is missed.

use std::collections::{HashMap, VecDeque};

use no_leak::Config;

const ITERATIONS: u64 = 10_000;

/// Leaks one 16-byte block every `period` iterations; the list holding them is pre-sized.
fn leak_rate(period: u64) -> (bool, f64) {
    let mut kept: Vec<Box<[u8; 16]>> = Vec::with_capacity(ITERATIONS as usize);
    let mut n = 0u64;
    let r = Config::new()
        .name(format!("1 block / {period}"))
        .soak(ITERATIONS)
        .measure(|| {
            n += 1;
            if n.is_multiple_of(period) {
                kept.push(Box::new([0u8; 16]));
            }
        });
    let slope = r
        .soak
        .as_ref()
        .and_then(|s| s.bytes)
        .map_or(0.0, |t| t.slope);
    (r.is_leak(), slope)
}

/// A bounded cache of 16 entries churning values of varying size.
fn churn() -> bool {
    let mut map: HashMap<u64, Vec<u8>> = HashMap::with_capacity(64);
    let mut order: VecDeque<u64> = VecDeque::with_capacity(17);
    let mut next = 0u64;
    let r = Config::new().name("churn").soak(ITERATIONS).measure(|| {
        next += 1;
        map.insert(next, vec![0u8; 16 + (next % 13) as usize * 40]);
        order.push_back(next);
        if order.len() > 16 {
            map.remove(&order.pop_front().unwrap());
        }
    });
    r.is_leak()
}

/// Steady formatting work: strings built and dropped.
fn strings() -> bool {
    let mut n = 0u64;
    let r = Config::new().name("strings").soak(ITERATIONS).measure(|| {
        n += 1;
        std::hint::black_box(format!("request {n} served in {} us", n % 977));
    });
    r.is_leak()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    println!("detection, one 16-byte block every N iterations, {ITERATIONS}-iteration soak:");
    let mut smallest = None;
    let mut missed_required = false;
    for period in [10, 100, 500, 1000, 2000, 2500, 3000, 5000] {
        let (caught, slope) = leak_rate(period);
        println!(
            "  N = {period:>5}: {:.4} B/iteration, {}",
            slope,
            if caught { "caught" } else { "missed" }
        );
        if caught {
            smallest = Some(slope);
        }
        if period == 100 && !caught {
            missed_required = true;
        }
    }
    if let Some(s) = smallest {
        println!("smallest slope caught: {s:.4} B/iteration");
    }
    let churn_flags = (0..rounds).filter(|_| churn()).count();
    let string_flags = (0..rounds).filter(|_| strings()).count();
    println!("false flags: churning cache {churn_flags} of {rounds}, string formatting {string_flags} of {rounds}");
    if missed_required || churn_flags + string_flags > 0 {
        std::process::exit(1);
    }
}
