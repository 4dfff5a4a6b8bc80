use no_leak::no_leak;

#[no_leak(max_bytes = 18446744073709551616)]
fn bound_over_u64() {}

fn main() {}
