use no_leak::no_leak;

#[no_leak(runs = 3 warmup = 2)]
fn no_comma_between_arguments() {}

fn main() {}
