use no_leak::no_leak;

struct Opaque;

#[no_leak]
fn error_is_not_debug() -> Result<(), Opaque> {
    Ok(())
}

fn main() {}
