use no_leak::no_leak;

// The module's own arguments are checked, once, and its items stay as written.
#[no_leak(runs = 0, max_byte = 64)]
mod tests {
    pub fn helper() {}
}

fn main() {
    tests::helper();
}
