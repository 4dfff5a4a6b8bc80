use no_leak::no_leak;

#[no_leak(runs = 3)]
const LIMIT: usize = 3;

fn main() {
    let _ = LIMIT;
}
