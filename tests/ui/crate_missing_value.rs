use no_leak::no_leak;

#[no_leak(crate)]
fn crate_without_a_value() {}

#[no_leak(crate = )]
fn crate_with_nothing_after_equals() {}

#[no_leak(crate(no_leak))]
fn crate_in_parentheses() {}

fn main() {}
