use no_leak::no_leak;

#[no_leak(runs = 0)]
fn no_runs() {}

fn main() {}
