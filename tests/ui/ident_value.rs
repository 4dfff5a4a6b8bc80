use no_leak::no_leak;

const RUNS: u32 = 3;

#[no_leak(runs = RUNS)]
fn value_is_a_name() {}

fn main() {}
