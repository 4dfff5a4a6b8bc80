use no_leak::no_leak;

#[no_leak(max_bytes = -64)]
fn negative_bound() {}

fn main() {}
