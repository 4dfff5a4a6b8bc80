use no_leak::no_leak;

#[no_leak]
fn returns_a_number() -> u32 {
    42
}

fn main() {}
