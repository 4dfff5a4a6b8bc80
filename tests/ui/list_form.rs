use no_leak::no_leak;

#[no_leak(runs(3))]
fn key_with_parentheses() {}

fn main() {}
