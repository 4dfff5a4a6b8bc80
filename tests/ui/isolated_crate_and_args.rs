// `crate = path` is the one argument #[no_leak::isolated] takes: the others are refused.
#[no_leak::isolated(crate = no_leak, runs = 3)]
fn isolated_with_crate_and_runs() {}

fn main() {}
