use no_leak::no_leak;

#[no_leak]
fn ok_carries_a_value() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
