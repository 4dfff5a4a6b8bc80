use no_leak::no_leak;

#[no_leak(runs = "3")]
fn value_is_a_string() {}

fn main() {}
