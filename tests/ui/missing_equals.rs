use no_leak::no_leak;

#[no_leak(runs: 3)]
fn colon_instead_of_equals() {}

fn main() {}
