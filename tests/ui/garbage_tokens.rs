use no_leak::no_leak;

#[no_leak(= 3)]
fn value_without_key() {}

fn main() {}
