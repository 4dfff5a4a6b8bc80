//! Reference cycles: `Rc` parents and children, `Arc` across threads, and a closure that captures
//! its owner. No drop ever frees a cycle; a `Weak` edge breaks it.

/// An `Rc` parent-child cycle.
pub mod rc_cycle {
    use std::cell::RefCell;
    use std::rc::{Rc, Weak};

    pub struct StrongNode {
        pub data: Vec<u8>,
        pub parent: RefCell<Option<Rc<StrongNode>>>,
        pub children: RefCell<Vec<Rc<StrongNode>>>,
    }

    /// Leaky: the child holds its parent with a strong `Rc`, the parent holds the child: a cycle
    /// that no drop ever frees.
    pub fn rc_cycle() {
        let parent = Rc::new(StrongNode {
            // leak-site
            data: vec![0; 64], // leak-site
            parent: RefCell::new(None),
            children: RefCell::new(Vec::new()),
        });
        let child = Rc::new(StrongNode {
            // leak-site
            data: vec![0; 32], // leak-site
            parent: RefCell::new(Some(parent.clone())),
            children: RefCell::new(Vec::new()),
        });
        parent.children.borrow_mut().push(child); // leak-site
    }

    pub struct WeakNode {
        pub data: Vec<u8>,
        pub parent: RefCell<Weak<WeakNode>>,
        pub children: RefCell<Vec<Rc<WeakNode>>>,
    }

    /// Fixed: children point at their parent with `Weak`.
    pub fn weak_parent() {
        let parent = Rc::new(WeakNode {
            data: vec![0; 64],
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
        });
        let child = Rc::new(WeakNode {
            data: vec![0; 32],
            parent: RefCell::new(Rc::downgrade(&parent)),
            children: RefCell::new(Vec::new()),
        });
        parent.children.borrow_mut().push(child);
    }

    corpus! {
        leaks rc_cycle => "leaked heap: ",
            held "in a cycle of blocks allocated at tests/corpus/cycles.rs:18, tests/corpus/cycles.rs:24, tests/corpus/cycles.rs:30\n";
        fixed weak_parent;
    }
}

/// The same cycle across threads, with `Arc`.
pub mod arc_cycle {
    use std::sync::{Arc, Mutex, Weak};

    /// Leaky: two nodes that hold each other strongly.
    pub fn arc_cycle() {
        struct Node {
            other: Mutex<Option<Arc<Node>>>,
        }
        let a = Arc::new(Node {
            // leak-site
            other: Mutex::new(None),
        });
        let b = Arc::new(Node {
            // leak-site
            other: Mutex::new(Some(a.clone())),
        });
        *a.other.lock().unwrap() = Some(b);
    }

    /// Fixed: the back edge is a `Weak`, so dropping `a` frees both.
    pub fn arc_weak_back_edge() {
        struct Node {
            next: Mutex<Option<Arc<Node>>>,
            back: Mutex<Weak<Node>>,
        }
        let a = Arc::new(Node {
            next: Mutex::new(None),
            back: Mutex::new(Weak::new()),
        });
        let b = Arc::new(Node {
            next: Mutex::new(None),
            back: Mutex::new(Arc::downgrade(&a)),
        });
        *a.next.lock().unwrap() = Some(b.clone());
        assert!(b.back.lock().unwrap().upgrade().is_some());
        assert!(b.next.lock().unwrap().is_none());
        assert!(a.back.lock().unwrap().upgrade().is_none());
    }

    corpus! {
        leaks arc_cycle => "leaked heap: ",
            held "in a cycle of blocks allocated at tests/corpus/cycles.rs:70, tests/corpus/cycles.rs:74\n";
        fixed arc_weak_back_edge;
    }
}

/// A closure that captures its owner.
pub mod closure_captures_owner {
    use std::cell::RefCell;
    use std::rc::Rc;

    pub struct Button {
        pub label: String,
        pub on_click: RefCell<Option<Box<dyn Fn() -> usize>>>,
    }

    /// Leaky: the callback stored in the button captures an `Rc` of the button itself.
    pub fn closure_captures_owner() {
        let button = Rc::new(Button {
            // leak-site
            label: "ok".repeat(8), // leak-site
            on_click: RefCell::new(None),
        });
        let me = button.clone();
        *button.on_click.borrow_mut() = Some(Box::new(move || me.label.len())); // leak-site
    }

    /// Fixed: the callback captures a `Weak`.
    pub fn closure_captures_weak() {
        let button = Rc::new(Button {
            label: "ok".repeat(8),
            on_click: RefCell::new(None),
        });
        let me = Rc::downgrade(&button);
        *button.on_click.borrow_mut() =
            Some(Box::new(move || me.upgrade().map_or(0, |b| b.label.len())));
    }

    corpus! {
        leaks closure_captures_owner => "leaked heap: ",
            held "in a cycle of blocks allocated at tests/corpus/cycles.rs:120, tests/corpus/cycles.rs:126\n";
        fixed closure_captures_weak;
    }
}
