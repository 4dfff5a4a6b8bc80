//! Who holds leaked memory: every heap site of a failing report says whether a static (by name), a
//! thread, a reference cycle or nothing at all holds it.
//!
//! Each pattern is a `#[no_leak]` test that leaks one way and pins, with `#[should_panic]`, the
//! site line (by its function) followed by its retention line. `expected` is matched as a
//! substring of the whole report, so it names the function of the site it is about.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use no_leak::no_leak;

// ---- statics

type Listener = Box<dyn Fn() -> usize + Send>;

/// A listener registry nobody prunes.
static LISTENERS: Mutex<Vec<Listener>> = Mutex::new(Vec::new());

#[inline(never)]
fn subscribe(tag: String) {
    let listener: Listener = Box::new(move || tag.len());
    LISTENERS.lock().unwrap().push(listener);
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::subscribe)\n        held by static retention::LISTENERS, via \
                           tests/retention.rs:"
)]
fn listener_registry_is_held_by_its_static() {
    subscribe(format!("listener {}", 7));
}

/// A memo table behind a `OnceLock` inside a function.
fn memo() -> &'static Mutex<HashMap<u64, Vec<u8>>> {
    static M: OnceLock<Mutex<HashMap<u64, Vec<u8>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

#[inline(never)]
fn remember(value: Vec<u8>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    memo().lock().unwrap().insert(key, value);
}

#[inline(never)]
fn computed() -> Vec<u8> {
    vec![3u8; 100]
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::computed)\n        held by static retention::memo::M, via \
                           tests/retention.rs:"
)]
fn memo_table_in_a_once_lock_is_held_by_its_static() {
    remember(computed());
}

// ---- threads

thread_local! {
    /// Grows on every call, on whichever thread makes it.
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn request_id() -> String {
    format!("request {}", black_box(7))
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(expected = "(retention::request_id)\n        held by thread \
                           \"thread_local_that_accumulates_is_held_by_its_thread\", via \
                           tests/retention.rs:")]
fn thread_local_that_accumulates_is_held_by_its_thread() {
    let id = request_id();
    SEEN.with(|s| s.borrow_mut().push(id));
}

// ---- cycles

/// A doubly linked list whose back pointer is strong.
struct Node {
    prev: RefCell<Option<Rc<Node>>>,
    next: RefCell<Option<Rc<Node>>>,
}

#[inline(never)]
fn first_node() -> Rc<Node> {
    Rc::new(Node {
        prev: RefCell::new(None),
        next: RefCell::new(None),
    })
}

#[inline(never)]
fn second_node() -> Rc<Node> {
    Rc::new(Node {
        prev: RefCell::new(None),
        next: RefCell::new(None),
    })
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::second_node)\n        in a cycle of blocks allocated at \
                           tests/retention.rs:"
)]
fn doubly_linked_list_with_a_strong_back_pointer_is_a_cycle() {
    let a = first_node();
    let b = second_node();
    *a.next.borrow_mut() = Some(b.clone());
    *b.prev.borrow_mut() = Some(a.clone());
}

/// A button whose click handler owns the button.
struct Button {
    on_click: RefCell<Option<Box<dyn Fn() -> usize>>>,
    clicks: usize,
}

#[inline(never)]
fn button() -> Rc<Button> {
    Rc::new(Button {
        on_click: RefCell::new(None),
        clicks: 0,
    })
}

#[inline(never)]
fn handler_owning(owner: Rc<Button>) -> Box<dyn Fn() -> usize> {
    Box::new(move || owner.clicks + 1)
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::handler_owning)\n        in a cycle of blocks allocated at \
                           tests/retention.rs:"
)]
fn closure_that_owns_its_owner_is_a_cycle() {
    let b = button();
    let handler = handler_owning(b.clone());
    *b.on_click.borrow_mut() = Some(handler);
}

// ---- unreachable

#[inline(never)]
fn leak_on_this_thread() -> usize {
    Box::leak(Box::new([7u8; 48])).len()
}

#[inline(never)]
fn leak_on_a_worker() -> usize {
    Box::leak(Box::new([9u8; 56])).len()
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::leak_on_this_thread)\n        unreachable: nothing points \
                           at it"
)]
fn box_leak_on_the_test_thread_is_unreachable() {
    black_box(leak_on_this_thread());
}

#[test]
#[no_leak(settle_ms = 20)]
#[should_panic(
    expected = "(retention::leak_on_a_worker)\n        unreachable: nothing points at \
                           it"
)]
fn box_leak_on_a_joined_thread_is_unreachable() {
    std::thread::spawn(|| black_box(leak_on_a_worker()))
        .join()
        .unwrap();
}
