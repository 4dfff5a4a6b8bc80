use no_leak::no_leak;

#[no_leak(soak = 10000, max_slope_bytes_per_iteration = "half a byte")]
fn slope() {}

fn main() {}
