use no_leak::no_leak;

#[no_leak(soak = 10)]
fn too_short() {}

fn main() {}
