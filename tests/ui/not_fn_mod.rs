use no_leak::no_leak;

// An inline module is fine; a module in another file cannot be read by the attribute.
#[no_leak]
mod elsewhere;

fn main() {}
