// Only #[no_leak] takes a module.
#[no_leak::isolated]
mod tests {
    pub fn helper() {}
}

fn main() {
    tests::helper();
}
