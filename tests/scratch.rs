use no_leak::no_leak;
use std::sync::Mutex;
static PARKED: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

#[test]
#[no_leak]
fn leaky_all() {
    Box::leak(Box::new(1u8));
    std::thread::Builder::new().name("sleeper".into()).spawn(|| loop { std::thread::park() }).unwrap();
    PARKED.lock().unwrap().push(std::fs::File::open("/proc/self/status").unwrap());
    println!("hello from body");
}
#[test]
#[no_leak]
fn err() -> Result<(), String> { Err("bad".into()) }
#[test]
#[no_leak]
fn abort() { std::process::abort() }
