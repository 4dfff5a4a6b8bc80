//! `crate = path`: a crate that re-exports no_leak, so that its users need not depend on no_leak
//! themselves, names that path in the attribute, and the generated code reaches no_leak through
//! it (`#[my_reexport::no_leak::no_leak(crate = my_reexport::no_leak)]`).
//!
//! `reexport` is such a re-export. `::no_leak` resolves in this test crate too, so `spy` proves
//! the path is the one used: a re-export whose `run_test` and `run_isolated` count how deep the
//! calling thread is in them before handing over to no_leak's. A body that finds itself at depth
//! 1 was reached through the path given, once (a module's attribute and a test's own are merged,
//! never stacked).

use std::cell::Cell;

use rstest::rstest;

/// As a crate would re-export no_leak: `pub use no_leak;` at `my_reexport::no_leak`.
mod reexport {
    pub use no_leak;
}

/// A re-export that also counts the calls of the generated code.
mod spy {
    pub mod no_leak {
        pub use ::no_leak::{isolated, no_leak, Config};

        pub mod __private {
            use std::cell::Cell;

            // Everything else the generated code names, as no_leak has it.
            pub use ::no_leak::__private::*;

            thread_local! {
                /// How many calls of `run_test` or `run_isolated` the calling thread is inside.
                pub static DEPTH: Cell<u32> = const { Cell::new(0) };
            }

            struct Inside;

            impl Inside {
                fn enter() -> Inside {
                    DEPTH.with(|d| d.set(d.get() + 1));
                    Inside
                }
            }

            impl Drop for Inside {
                fn drop(&mut self) {
                    DEPTH.with(|d| d.set(d.get() - 1));
                }
            }

            #[track_caller]
            pub fn run_test<R: Outcome>(
                test: TestFn,
                config: ::no_leak::Config,
                body: impl FnMut() -> R,
            ) -> R {
                let _inside = Inside::enter();
                ::no_leak::__private::run_test(test, config, body)
            }

            #[track_caller]
            pub fn run_isolated<R: Outcome>(test: TestFn, body: impl FnOnce() -> R) -> R {
                let _inside = Inside::enter();
                ::no_leak::__private::run_isolated(test, body)
            }
        }
    }
}

/// Asserts that the body runs inside exactly one call of the spy's runner (allocates nothing).
fn assert_through_the_spy_once() {
    let depth = spy::no_leak::__private::DEPTH.with(Cell::get);
    assert_eq!(
        depth, 1,
        "not reached through `crate = spy::no_leak` exactly once"
    );
}

#[test]
#[reexport::no_leak::no_leak(crate = reexport::no_leak, runs = 3)]
fn clean_through_a_reexport() {
    drop(vec![0u8; 16]);
}

/// No `#[test]`: the attribute writes it, under the re-export's path too.
#[reexport::no_leak::no_leak(crate = reexport::no_leak)]
fn clean_through_a_reexport_without_test_attribute() {
    drop(vec![0u8; 16]);
}

/// `crate = "path"`, as serde and tokio take it.
#[test]
#[reexport::no_leak::no_leak(crate = "reexport::no_leak")]
fn path_written_as_a_string() {
    drop(vec![0u8; 16]);
}

#[test]
#[reexport::no_leak::no_leak(crate = reexport::no_leak)]
#[should_panic(expected = "leaked heap: ")]
fn leak_through_a_reexport_is_reported() {
    std::mem::forget(Box::new(1u8));
}

#[test]
#[spy::no_leak::no_leak(crate = spy::no_leak)]
fn check_goes_through_the_path() {
    assert_through_the_spy_once();
}

#[test]
#[spy::no_leak::isolated(crate = spy::no_leak)]
fn isolated_goes_through_the_path() {
    assert_through_the_spy_once();
}

/// Under a runtime attribute the attribute re-attaches itself after it, under the same path.
#[tokio::test]
#[spy::no_leak::no_leak(crate = spy::no_leak)]
async fn async_test_goes_through_the_path() {
    assert_through_the_spy_once();
}

/// Under `#[rstest]` likewise, onto every case.
#[rstest]
#[case(1)]
#[case(2)]
#[spy::no_leak::no_leak(crate = spy::no_leak)]
fn rstest_cases_go_through_the_path(#[case] n: u8) {
    assert!(n > 0);
    assert_through_the_spy_once();
}

/// The module form: the path is used inside the module, so it is written from the crate root.
#[spy::no_leak::no_leak(crate = crate::spy::no_leak)]
mod module_form {
    use super::assert_through_the_spy_once;

    #[test]
    fn each_test_goes_through_the_path() {
        assert_through_the_spy_once();
    }

    /// Its own attribute, written under the path, gets the module's arguments merged in (one
    /// attribute, not two).
    #[test]
    #[crate::spy::no_leak::no_leak(runs = 2)]
    fn own_attribute_under_the_path_is_merged() {
        assert_through_the_spy_once();
    }

    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn leak_is_reported() {
        std::mem::forget(vec![0u8; 8]);
    }

    #[test]
    #[crate::spy::no_leak::isolated]
    fn isolated_under_the_path_is_left_alone() {
        // Not given `crate = ...`: it goes through `::no_leak`, not the spy.
        let depth = crate::spy::no_leak::__private::DEPTH.with(std::cell::Cell::get);
        assert_eq!(depth, 0);
    }

    mod nested {
        #[test]
        fn nested_tests_go_through_the_path() {
            crate::assert_through_the_spy_once();
        }
    }
}
