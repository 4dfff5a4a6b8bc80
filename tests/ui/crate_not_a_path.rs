use no_leak::no_leak;

#[no_leak(crate = 5)]
fn a_number() {}

#[no_leak(crate = no_leak::)]
fn ends_in_colons() {}

#[no_leak(crate = no_leak::<u8>)]
fn generic_arguments() {}

#[no_leak(crate = no_leak:inner)]
fn one_colon() {}

#[no_leak(crate = no_leak runs = 3)]
fn missing_comma() {}

#[no_leak(crate = "not a path")]
fn string_that_is_not_a_path() {}

#[no_leak(crate = no_leak, crate = no_leak)]
fn crate_twice() {}

fn main() {}
