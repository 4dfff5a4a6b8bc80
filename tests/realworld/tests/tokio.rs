//! tokio, used the way services and CLIs use it.
//!
//! - `clean_runtime_built_and_dropped_per_call`: a sync API over async code (a CLI command, a
//!   blocking client) that builds a multi-thread runtime per call, `block_on`s, and drops it.
//! - `clean_spawn_blocking`: CPU or file work moved off the async workers with `spawn_blocking`
//!   and awaited, on the test's own runtime.
//! - `clean_service_tasks_finish`: a long-lived runtime in a static (`OnceLock<Runtime>`,
//!   registered with `no_leak::watch_runtime`), request handlers spawned on it that finish.
//! - `clean_listener_bound_and_dropped`: a `TcpListener` bound on 127.0.0.1:0 and dropped (a
//!   port probe, a server that fails to start).
//! - `clean_listener_dropped_on_service_runtime`: the same, bound through the long-lived runtime.
//! - `clean_echo_round_trip`: connect, accept, one echo, both ends closed.
//! - `clean_echo_round_trip_on_service_runtime`: the echo server a task on the long-lived
//!   runtime, the client on the test's runtime.
//! - `clean_service_refresher_stopped_and_awaited`: the fixed twin of the refresher below: an
//!   `interval` loop on the long-lived runtime that `select!`s on a `watch` stop signal, stopped
//!   and awaited.
//! - `clean_spawn_blocking_on_service_runtime`: `spawn_blocking` on the long-lived runtime (its
//!   blocking pool keeps idle threads for 10 s).
//! - `leak_service_task_loops_forever`: a "background refresher" spawned on the long-lived
//!   runtime with no way to stop it.
//! - `leak_socket_parked_in_static`: a listener kept in a global registry "for later" and never
//!   removed.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::service;
use no_leak::no_leak;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[test]
#[no_leak]
fn clean_runtime_built_and_dropped_per_call() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let total = rt.block_on(async {
        let handles: Vec<_> = (0..8u64)
            .map(|i| tokio::spawn(async move { i * 10 }))
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, 280);
    drop(rt);
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_spawn_blocking() {
    let digest = tokio::task::spawn_blocking(|| {
        let data = vec![3u8; 64 * 1024];
        data.iter().map(|&b| b as u64).sum::<u64>()
    })
    .await
    .unwrap();
    assert_eq!(digest, 3 * 64 * 1024);
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_service_tasks_finish() {
    let handles: Vec<_> = (0..10u32)
        .map(|i| {
            service().spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                format!("response-{i}").len()
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    assert_eq!(total, 10 * 10);
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_listener_bound_and_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(listener.local_addr().unwrap().port() > 0);
    drop(listener);
}

#[test]
#[no_leak]
fn clean_listener_dropped_on_service_runtime() {
    let port = service().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    });
    assert!(port > 0);
}

async fn echo_once(listener: TcpListener) {
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).await.unwrap();
    conn.write_all(&buf[..n]).await.unwrap();
}

async fn client_round_trip(addr: std::net::SocketAddr) {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"ping");
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_echo_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(echo_once(listener));
    client_round_trip(addr).await;
    server.await.unwrap();
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_echo_round_trip_on_service_runtime() {
    let listener = service()
        .spawn(async { TcpListener::bind("127.0.0.1:0").await.unwrap() })
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = service().spawn(echo_once(listener));
    client_round_trip(addr).await;
    server.await.unwrap();
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "leaked heap, tasks: ")]
async fn leak_service_task_loops_forever() {
    let state = vec![0u8; 256];
    service().spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            std::hint::black_box(&state);
        }
    });
}

static REGISTRY: Mutex<Vec<(String, std::net::TcpListener)>> = Mutex::new(Vec::new());

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap, fds: ")]
fn leak_socket_parked_in_static() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let name = format!("listener-{}", listener.local_addr().unwrap().port());
    REGISTRY.lock().unwrap().push((name, listener));
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_service_refresher_stopped_and_awaited() {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let state = vec![0u8; 256];
    let refresher = service().spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = tick.tick() => { std::hint::black_box(&state); }
                _ = stopped.changed() => break,
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(12)).await;
    stop.send(true).unwrap();
    refresher.await.unwrap();
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_spawn_blocking_on_service_runtime() {
    let digest = service()
        .spawn_blocking(|| {
            let data = vec![3u8; 64 * 1024];
            data.iter().map(|&b| b as u64).sum::<u64>()
        })
        .await
        .unwrap();
    assert_eq!(digest, 3 * 64 * 1024);
}
