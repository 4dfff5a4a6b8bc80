use no_leak::no_leak;

// Each faulty argument gets its own error, and the valid ones none.
#[no_leak(runz = 3, warmup = 0, max_bytes = 64, max_bytes = 128)]
fn one_error_per_mistake(n: u32) {
    let _ = n;
}

fn main() {}
