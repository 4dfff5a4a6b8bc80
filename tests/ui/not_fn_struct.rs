use no_leak::no_leak;

#[no_leak]
struct Cache {
    entries: Vec<u8>,
}

fn main() {
    let _ = Cache {
        entries: Vec::new(),
    }
    .entries;
}
