#[no_leak::isolated(runs = 3)]
fn isolated_takes_no_arguments() {}

fn main() {}
