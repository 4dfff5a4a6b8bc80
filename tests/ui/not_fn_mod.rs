use no_leak::no_leak;

#[no_leak]
mod tests {
    pub fn helper() {}
}

fn main() {
    tests::helper();
}
