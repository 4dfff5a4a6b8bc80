use no_leak::no_leak;

#[no_leak(runs = 3,, warmup = 2)]
fn two_commas() {}

fn main() {}
