use no_leak::no_leak;

#[no_leak(runs = 3u32)]
fn value_with_type_suffix() {}

fn main() {}
