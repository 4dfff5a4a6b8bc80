use no_leak::no_leak;

#[no_leak(runs = 1.5)]
fn value_is_a_float() {}

fn main() {}
