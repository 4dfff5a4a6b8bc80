//! The table on its own: storage, probing, removal by backward shift, the filter.

use super::*;
use std::collections::HashMap;

fn table(max_cap: usize) -> Table {
    Table::new(max_cap, Box::leak(Box::new(Filter::new())))
}

#[test]
fn insert_remove_and_owner_counts() {
    let mut t = table(1 << 10);
    assert!(t.insert(0x1000, 24, 3));
    assert!(t.insert(0x2000, 1 << 40, 4));
    assert_eq!(t.len(), 2);
    assert_eq!(t.remove(0x1000), Some((3, 24)));
    assert_eq!(t.remove(0x1000), None);
    assert_eq!(t.remove(0x2000), Some((4, 1 << 40)));
    assert_eq!(t.per_owner[3] + t.per_owner[4], 0);
    assert!(t.filter.0.iter().all(|b| b.load(Relaxed) == 0));
}

#[test]
fn full_table_refuses_and_keeps_what_it_has() {
    // max_cap 8 holds 4 entries at load 1/2.
    let mut t = table(8);
    for a in 1..=4 {
        assert!(t.insert(a * 16, a, 1), "entry {a}");
    }
    assert!(!t.insert(5 * 16, 5, 1), "the fifth does not fit");
    assert_eq!(t.len(), 4);
    for a in 1..=4 {
        assert_eq!(t.remove(a * 16), Some((1, a)));
    }
    assert!(t.insert(5 * 16, 5, 1), "room again");
}

#[test]
fn too_large_a_size_is_refused() {
    let mut t = table(1 << 10);
    assert!(!t.insert(0x40, 1 << 48, 0));
    assert_eq!(t.len(), 0);
}

#[test]
fn filter_bytes_stick_at_255_until_the_table_is_empty() {
    // 300 addresses that share one filter byte (found by search: 1 in 65,536 do).
    let byte = |a: usize| (hash(a) >> (64 - FILTER_BITS)) as usize;
    let target = byte(16);
    let same: Vec<usize> = (1..)
        .map(|k: usize| k * 16)
        .filter(|&a| byte(a) == target)
        .take(300)
        .collect();
    let mut t = table(1 << 10);
    for &a in &same {
        assert!(t.insert(a, 1, 0));
    }
    let f = |t: &Table| t.filter.0[target].load(Relaxed);
    assert_eq!(f(&t), 255);
    for &a in &same[..299] {
        t.remove(a);
        assert!(f(&t) > 0, "never below the true count");
    }
    t.remove(same[299]);
    assert_eq!(f(&t), 0, "cleared once the table is empty");
}

#[test]
fn remove_owner_drops_only_that_owners_entries() {
    let mut t = table(1 << 12);
    for a in 1..=1000usize {
        assert!(t.insert(a * 16, a, (a % 3) as u32));
    }
    t.remove_owner(1);
    for a in 1..=1000usize {
        assert_eq!(t.contains(a * 16), a % 3 != 1, "{a}");
    }
    assert_eq!(t.per_owner[1], 0);
    assert_eq!(t.len(), 1000 - 334);
}

proptest::proptest! {
    /// The table agrees with a HashMap model under any mix of inserts, removes and owner
    /// removals, on few distinct addresses (so that runs collide and wrap).
    #[test]
    fn table_matches_a_model(ops in proptest::collection::vec((0u8..3, 1usize..200, 0u32..4), 1..400)) {
        let mut t = table(1 << 9);
        let mut model: HashMap<usize, (u32, usize)> = HashMap::new();
        for (op, a, owner) in ops {
            let addr = a * 16;
            match op {
                0 => {
                    if t.insert(addr, a, owner) {
                        model.insert(addr, (owner, a));
                    } else {
                        proptest::prop_assert!(model.len() >= (1 << 9) / 2);
                    }
                }
                1 => proptest::prop_assert_eq!(t.remove(addr), model.remove(&addr)),
                _ => {
                    t.remove_owner(owner);
                    model.retain(|_, v| v.0 != owner);
                }
            }
            proptest::prop_assert_eq!(t.len(), model.len());
        }
        for a in 1..200usize {
            proptest::prop_assert_eq!(t.contains(a * 16), model.contains_key(&(a * 16)));
        }
    }
}
