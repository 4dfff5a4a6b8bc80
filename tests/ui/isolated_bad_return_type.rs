#[no_leak::isolated]
fn returns_an_option() -> Option<()> {
    None
}

fn main() {}
