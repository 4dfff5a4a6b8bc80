use no_leak::no_leak;

struct Service;

#[no_leak]
impl Service {
    fn start(&self) {}
}

fn main() {
    Service.start();
}
