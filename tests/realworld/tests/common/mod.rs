//! What several corpus files share: the long-lived "service" runtime a real program keeps in a
//! static and hands its `Handle` around, registered with no_leak where it is built.

#![allow(dead_code)] // each test file uses its own part of this module

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// The program's long-lived runtime: two workers, I/O and timers, built on first use and never
/// dropped, watched by no_leak from the first run on (so its tasks count in `tasks`).
pub fn service() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("service")
            .enable_all()
            .build()
            .expect("the service runtime");
        no_leak::watch_runtime(rt.handle());
        rt
    })
}
