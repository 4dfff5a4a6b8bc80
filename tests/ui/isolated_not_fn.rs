#[no_leak::isolated]
struct Fixture;

fn main() {
    let _ = Fixture;
}
