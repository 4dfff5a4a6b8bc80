use no_leak::no_leak;

#[no_leak(runs = , warmup = 2)]
fn equals_without_value() {}

fn main() {}
