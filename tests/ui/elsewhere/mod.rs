// The module file of `tests/ui/not_fn_mod.rs`.
#[test]
fn in_another_file() {}
