//! An axum web server on 127.0.0.1:0, the way an integration test or an embedded admin endpoint
//! starts one, with a raw HTTP/1.1 client (one request, `Connection: close`).
//!
//! - `clean_axum_graceful_shutdown`: server spawned on the test's runtime with
//!   `with_graceful_shutdown(rx)`, one request served, shutdown sent through a oneshot, server
//!   awaited.
//! - `clean_axum_graceful_shutdown_on_service_runtime`: the same server spawned on the
//!   long-lived runtime a program keeps in a static.
//! - `clean_axum_on_own_thread_joined`: the server on a thread with its own runtime (an
//!   embedded admin server in a sync program), stopped through the oneshot and joined.
//! - `leak_axum_no_shutdown_on_service_runtime`: the server spawned on the long-lived runtime
//!   with no shutdown signal: its task, listener and router live on.
//! - `leak_axum_no_shutdown_on_own_thread`: the server on its own thread and runtime, never
//!   told to stop.

mod common;

use std::net::SocketAddr;

use axum::{routing::get, Router};
use common::service;
use no_leak::no_leak;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/health", get(|| async { "ok" }))
}

/// One GET with `Connection: close`, read to the end; returns the response.
async fn get_once(addr: SocketAddr, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    response
}

fn std_get_once(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_axum_graceful_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app())
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    });
    let response = get_once(addr, "/").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_axum_graceful_shutdown_on_service_runtime() {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, addr) = oneshot::channel::<SocketAddr>();
    let server = service().spawn(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(listener.local_addr().unwrap()).unwrap();
        axum::serve(listener, app())
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    });
    let addr = addr.await.unwrap();
    let response = get_once(addr, "/health").await;
    assert!(response.ends_with("ok"), "{response}");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[test]
#[no_leak]
fn clean_axum_on_own_thread_joined() {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, addr) = std::sync::mpsc::channel::<SocketAddr>();
    let thread = std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app())
                    .with_graceful_shutdown(async {
                        stopped.await.ok();
                    })
                    .await
                    .unwrap();
            });
        })
        .unwrap();
    let addr = addr.recv().unwrap();
    let response = std_get_once(addr, "/");
    assert!(response.ends_with("hello"), "{response}");
    stop.send(()).unwrap();
    thread.join().unwrap();
}

#[no_leak]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "leaked heap, fds, tasks: ")]
async fn leak_axum_no_shutdown_on_service_runtime() {
    let (ready, addr) = oneshot::channel::<SocketAddr>();
    service().spawn(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(listener.local_addr().unwrap()).unwrap();
        axum::serve(listener, app()).await.unwrap();
    });
    let addr = addr.await.unwrap();
    let response = get_once(addr, "/").await;
    assert!(response.ends_with("hello"), "{response}");
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap, threads, fds: ")]
fn leak_axum_no_shutdown_on_own_thread() {
    let (ready, addr) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app()).await.unwrap();
            });
        })
        .unwrap();
    let addr = addr.recv().unwrap();
    let response = std_get_once(addr, "/");
    assert!(response.ends_with("hello"), "{response}");
}
