use no_leak::{no_leak, Measure};

#[test]
#[no_leak]
fn clean() {
    let v = vec![1u8; 100];
    drop(v);
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap")]
fn leaky() {
    Box::leak(Box::new(1u8));
}

#[test]
#[no_leak]
#[should_panic(expected = "boom")]
fn panics() {
    panic!("boom")
}

#[test]
fn closure_thread_scope() {
    let r = no_leak::Config::new().measure(|| {
        std::mem::forget(vec![0u8; 16]);
    });
    println!("{r}");
    assert!(r.is_leak());
    assert_eq!(r.net(Measure::Bytes), Some(80), "{r}");
    assert_eq!(
        r.per_run.iter().map(|d| d.bytes).collect::<Vec<_>>(),
        [16; 5]
    );
}
