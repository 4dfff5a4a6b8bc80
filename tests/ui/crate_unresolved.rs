// The path is used as written: rustc's error points at it in the attribute.
use no_leak::no_leak;

#[no_leak(crate = nowhere::no_leak)]
fn path_that_does_not_resolve() {}

fn main() {}
