use no_leak::no_leak;

#[no_leak(config::runs = 3)]
fn key_is_a_path() {}

fn main() {}
