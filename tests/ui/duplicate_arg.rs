use no_leak::no_leak;

#[no_leak(runs = 3, warmup = 2, runs = 4)]
fn runs_set_twice() {}

fn main() {}
