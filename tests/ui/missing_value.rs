use no_leak::no_leak;

#[no_leak(runs)]
fn key_without_value() {}

fn main() {}
