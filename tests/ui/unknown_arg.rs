use no_leak::no_leak;

#[no_leak(runz = 3)]
fn typo_in_key() {}

fn main() {}
