//! tracing, set up the way services set it up: one global subscriber (a `Registry` with a `fmt`
//! layer, output discarded here) installed at start-up, spans entered on whichever thread
//! handles the work.
//!
//! - `clean_tracing_spans_on_scoped_threads`: request spans entered and events logged on two
//!   fresh `std::thread::scope` threads per run (the registry keeps a span stack per thread).
//! - `clean_tracing_spans_on_rayon_workers`: the same from rayon's global pool.
//! - `clean_span_timing_layer_removes_on_close`: a custom `Layer` that records when each span
//!   opened in a shared table and removes the entry in `on_close`.
//! - `leak_span_timing_layer_never_removes`: the same layer with `on_close` forgotten: the table
//!   grows by one entry per span.

use std::sync::{Mutex, Once};
use std::time::Instant;

use no_leak::no_leak;
use rayon::prelude::*;
use tracing::span::{Attributes, Id};
use tracing::{info, info_span, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Records the opening time of every span; `forgets` leaves out the removal on close.
struct SpanTimings {
    open: &'static Mutex<Vec<(u64, Instant)>>,
    forgets: bool,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanTimings {
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        self.open
            .lock()
            .unwrap()
            .push((id.into_u64(), Instant::now()));
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if !self.forgets {
            let mut open = self.open.lock().unwrap();
            if let Some(i) = open.iter().rposition(|(s, _)| *s == id.into_u64()) {
                let (_, opened) = open.swap_remove(i);
                std::hint::black_box(opened.elapsed());
            }
        }
    }
}

static OPEN_SPANS: Mutex<Vec<(u64, Instant)>> = Mutex::new(Vec::new());

/// The program's start-up: a registry, a fmt layer writing nowhere, and the timing layer.
/// Each test binary process runs one `#[no_leak]` test, so each installs its own.
fn init(forgets: bool) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
            .with(SpanTimings {
                open: &OPEN_SPANS,
                forgets,
            });
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

fn handle_request(id: u32) -> u32 {
    let span = info_span!("request", id);
    let _entered = span.enter();
    info!(path = "/items", "handled");
    id * 2
}

#[test]
#[no_leak]
fn clean_tracing_spans_on_scoped_threads() {
    init(false);
    std::thread::scope(|s| {
        let a = s.spawn(|| (0..20).map(handle_request).sum::<u32>());
        let b = s.spawn(|| (20..40).map(handle_request).sum::<u32>());
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 2 * (39 * 40 / 2));
    });
}

#[test]
#[no_leak]
fn clean_tracing_spans_on_rayon_workers() {
    init(false);
    let total: u32 = (0..200u32).into_par_iter().map(handle_request).sum();
    assert_eq!(total, 2 * (199 * 200 / 2));
}

#[test]
#[no_leak]
fn clean_span_timing_layer_removes_on_close() {
    init(false);
    for id in 0..50 {
        handle_request(id);
    }
    assert!(OPEN_SPANS.lock().unwrap().is_empty());
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_span_timing_layer_never_removes() {
    init(true);
    for id in 0..50 {
        handle_request(id);
    }
}
