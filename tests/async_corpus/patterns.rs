//! The async leak patterns, as library-like code: each leaky version next to its fix.
//!
//! In async Rust the twin of a leaked goroutine is a task that never ends: spawned onto a runtime
//! that outlives the caller, waiting forever on a timer or a channel, and holding its captures
//! alive. Services keep such a runtime in a static or pass its `Handle` around; [`service`] is
//! that runtime here, and it is registered with `no_leak::watch_runtime`, so its alive tasks are
//! counted in the `tasks` dimension.

#![allow(dead_code)]

use std::hint::black_box;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::sleep;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The name of the service runtime's threads (its worker and its blocking threads).
pub const SERVICE_THREADS: &str = "svc-rt";

/// A service's long-lived runtime, kept in a static and watched by no_leak from the moment it is
/// built. One worker thread: every task runs on it, so its lazy per-thread state is set up once,
/// in the first run.
pub fn service() -> &'static Handle {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(SERVICE_THREADS)
            .enable_time()
            .build()
            .expect("the service runtime");
        no_leak::watch_runtime(rt.handle());
        rt
    });
    RT.handle()
}

/// A long-lived runtime nobody told no_leak about: its tasks are not counted, but what they hold
/// still shows in the heap.
pub fn unwatched() -> &'static Handle {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("unwatched-rt")
            .enable_time()
            .build()
            .expect("the unwatched runtime")
    });
    RT.handle()
}

// ---------------------------------------------------------------------------------------------
// 1. A task that loops forever (Go: a goroutine with no exit condition), versus one cancelled
//    through a `CancellationToken` (Go: `context.WithCancel`).

/// Leaky: a ticker task with no way to stop it. It holds its state forever.
pub fn spawn_forever_task(rt: &Handle) {
    let state = vec![0u8; 256];
    rt.spawn(async move {
        loop {
            sleep(Duration::from_millis(10)).await;
            black_box(&state);
        }
    });
}

/// The ticker, with an exit: it stops when `token` is cancelled.
async fn ticker(token: CancellationToken) {
    let state = vec![0u8; 256];
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = sleep(Duration::from_millis(10)) => {
                black_box(&state);
            }
        }
    }
}

/// Fixed: the task watches a token; the caller cancels it and waits for it to end (Go:
/// `cancel()` then `wg.Wait()`).
pub async fn cancel_and_await_task(rt: &Handle) {
    let token = CancellationToken::new();
    let task = rt.spawn(ticker(token.clone()));
    sleep(Duration::from_millis(1)).await;
    token.cancel();
    task.await.expect("the ticker ends cleanly");
}

/// A service that owns its ticker: dropping the service cancels it (`DropGuard`).
pub struct Ticking {
    _stop: DropGuard,
}

impl Ticking {
    pub fn start(rt: &Handle) -> Ticking {
        let token = CancellationToken::new();
        rt.spawn(ticker(token.clone()));
        Ticking {
            _stop: token.drop_guard(),
        }
    }
}

/// Also fixed: the token is cancelled when the owner is dropped. Nobody waits for the task: it
/// ends a moment later on the service's worker, and the check's settling waits for that.
pub fn cancel_on_drop_task(rt: &Handle) {
    let svc = Ticking::start(rt);
    drop(svc);
}

// ---------------------------------------------------------------------------------------------
// 2. A task blocked forever sending into a full channel nobody drains (Go: a goroutine blocked
//    on a send nobody receives), versus a closed channel.

static PARKED_RECEIVERS: Mutex<Vec<mpsc::Receiver<Vec<u8>>>> = Mutex::new(Vec::new());

/// Leaky: the channel is full and its receiver is parked where nobody reads it (a "result
/// nobody waits for"), so the producer task waits for capacity forever.
pub fn blocked_task_sender(rt: &Handle) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1);
    tx.try_send(vec![0; 64]).expect("room for one");
    rt.spawn(async move {
        let _ = tx.send(vec![1; 64]).await;
    });
    PARKED_RECEIVERS.lock().unwrap().push(rx);
}

/// Fixed: the receiver is closed (and dropped), which fails the blocked send, and the producer
/// ends. Returns whether the send failed, as it must.
pub async fn closed_channel_task_sender(rt: &Handle) -> bool {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
    tx.try_send(vec![0; 64]).expect("room for one");
    let producer = rt.spawn(async move { tx.send(vec![1; 64]).await.is_err() });
    rx.close();
    drop(rx);
    producer.await.expect("the producer ends cleanly")
}

// ---------------------------------------------------------------------------------------------
// 3. A detached task that holds its owner: an `Arc` cycle through a task, versus a `JoinSet`
//    that aborts its tasks when it is dropped.

/// A connection with a keep-alive pinger task.
pub struct Conn {
    buf: Vec<u8>,
    pinger: Mutex<Option<JoinHandle<()>>>,
}

impl Conn {
    fn ping(&self) -> usize {
        black_box(self.buf.len())
    }
}

impl Drop for Conn {
    /// Meant to stop the pinger. With the leaky version it never runs: the pinger holds the
    /// connection.
    fn drop(&mut self) {
        if let Some(task) = self.pinger.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn ping_forever(conn: Arc<Conn>) {
    loop {
        sleep(Duration::from_millis(10)).await;
        conn.ping();
    }
}

/// Leaky: the detached pinger holds an `Arc<Conn>`, and `Conn::drop` (which would abort the
/// pinger) never runs because of it: connection and task keep each other alive.
pub fn connect_leaky(rt: &Handle) -> Arc<Conn> {
    let conn = Arc::new(Conn {
        buf: vec![0; 128],
        pinger: Mutex::new(None),
    });
    let task = rt.spawn(ping_forever(conn.clone()));
    *conn.pinger.lock().unwrap() = Some(task);
    conn
}

/// Fixed: the client owns its tasks in a `JoinSet`. Dropping the client drops the set, which
/// aborts the pinger, which drops its `Arc<Conn>`.
pub struct Client {
    pub conn: Arc<Conn>,
    tasks: JoinSet<()>,
}

pub fn connect_fixed(rt: &Handle) -> Client {
    let conn = Arc::new(Conn {
        buf: vec![0; 128],
        pinger: Mutex::new(None),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn_on(ping_forever(conn.clone()), rt);
    Client { conn, tasks }
}

// ---------------------------------------------------------------------------------------------
// 4. Blocking work that never returns.

/// Leaky: `spawn_blocking` work with no end, on the service's runtime. Each call takes one more
/// blocking thread from the pool, for good. (On a runtime that gets dropped, it would make the
/// drop wait forever instead.)
pub fn spawn_blocking_forever(rt: &Handle) {
    rt.spawn_blocking(|| loop {
        std::thread::sleep(Duration::from_millis(20));
    });
}

/// Fixed: the blocking work has an end (it watches a token), and it is cancelled and awaited. It
/// runs on the runtime current where it is called: in a `#[tokio::test]`, the test's own runtime,
/// whose drop at the end of every run joins its blocking threads.
///
/// (On a long-lived runtime the thread of finished blocking work stays idle in the pool for 10 s,
/// tokio's `thread_keep_alive`, which is not a leak but shows in `threads` if it happens during
/// the measured runs; a run on the test's own runtime leaves nothing behind.)
pub async fn blocking_work_cancelled() {
    let token = CancellationToken::new();
    let stop = token.clone();
    let work = tokio::task::spawn_blocking(move || {
        let mut rounds = 0u32;
        while !stop.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
            rounds += 1;
        }
        rounds
    });
    sleep(Duration::from_millis(2)).await;
    token.cancel();
    black_box(work.await.expect("the blocking work ends cleanly"));
}
