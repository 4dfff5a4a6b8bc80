use no_leak::no_leak;

#[no_leak]
async fn needs_a_runtime() {
    std::future::ready(()).await;
}

fn main() {}
