use no_leak::no_leak;

#[no_leak]
fn takes_a_case(n: u32, name: &str) {
    let _ = (n, name);
}

fn main() {}
