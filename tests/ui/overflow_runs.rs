use no_leak::no_leak;

#[no_leak(runs = 4294967296)]
fn runs_over_u32() {}

fn main() {}
