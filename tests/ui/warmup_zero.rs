use no_leak::no_leak;

#[no_leak(warmup = 0)]
fn no_warmup() {}

fn main() {}
