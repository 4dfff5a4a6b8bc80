//! The points-to graph of live captured blocks, and who holds each block.
//!
//! A word (in a block or a root region) whose value lies inside a live block is an edge to that
//! block, as in any conservative collector: the scan cannot know which words are pointers.
//! Classification, per block, strongest holder first:
//! 1. reachable from a static (breadth first, so the chain shown is a shortest one);
//! 2. else reachable from a thread's stack or thread-locals;
//! 3. else, if a thread's stack could not be read: not determined;
//! 4. else among the blocks nothing reaches: the strongly connected components (Tarjan) that no
//!    other such component points at are the leak's sources. A source of several blocks (or of
//!    one block pointing at itself) is a cycle; a source of one block is unreachable. Every other
//!    block is held by the source it is reached from.

use crate::diagnosis::retention::memory::Copy;
use crate::diagnosis::retention::roots::{Region, Root};

/// A block: where it is and how big.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) addr: usize,
    pub(crate) size: usize,
}

/// A root word pointing into a block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) node: u32,
    pub(crate) root: Root,
    /// The address of the word.
    pub(crate) at: usize,
}

/// Why a block is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Reachable from the static word at this address.
    Static { at: usize },
    /// Reachable from this thread (index into the roots' threads).
    Thread(usize),
    /// Reachable only from this strongly connected component of several blocks.
    Cycle(u32),
    /// Reachable only from a block nothing points at (itself, or another one).
    Unreachable,
    /// Possibly held by a thread whose stack could not be read.
    NotDetermined,
}

/// The graph over `spans` (sorted by address, not overlapping).
pub(crate) struct Graph {
    pub(crate) spans: Vec<Span>,
    pub(crate) edges: Vec<Vec<u32>>,
    pub(crate) hits: Vec<Hit>,
}

impl Graph {
    /// Builds the graph from each block's copied words (`None`: unreadable, no edges out) and
    /// the copied root regions.
    pub(crate) fn build(
        spans: Vec<Span>,
        contents: &[Option<Copy>],
        roots: &[(Region, Option<Copy>)],
    ) -> Graph {
        let mut edges = vec![Vec::new(); spans.len()];
        for (i, c) in contents.iter().enumerate() {
            let Some(c) = c else { continue };
            let out = &mut edges[i];
            out.extend(c.words.iter().filter_map(|&w| find(&spans, w)));
            out.sort_unstable();
            out.dedup();
        }
        let mut hits = Vec::new();
        for (region, copy) in roots {
            let Some(c) = copy else { continue };
            for (k, &w) in c.words.iter().enumerate() {
                if let Some(node) = find(&spans, w) {
                    hits.push(Hit {
                        node,
                        root: region.root,
                        at: c.start + k * std::mem::size_of::<usize>(),
                    });
                }
            }
        }
        Graph { spans, edges, hits }
    }

    /// Each block's class and the block it was reached from (`None` for the first block of a
    /// chain: the one a root points at, or a source of the unreached part).
    pub(crate) fn classify(&self, threads_unreadable: bool) -> (Vec<Class>, Vec<Option<u32>>) {
        let n = self.spans.len();
        let mut class: Vec<Option<Class>> = vec![None; n];
        let mut parent = vec![None; n];
        let statics = self.hits.iter().filter(|h| h.root == Root::Static);
        let seeds: Vec<(u32, Class)> = statics
            .map(|h| (h.node, Class::Static { at: h.at }))
            .collect();
        self.spread(&seeds, &mut class, &mut parent);
        // Other threads before the scanning thread (index 0): its stack holds stale words of the
        // check's own bookkeeping, so a block that another thread also reaches is that thread's.
        for own in [false, true] {
            let seeds: Vec<(u32, Class)> = self
                .hits
                .iter()
                .filter_map(|h| match h.root {
                    Root::Thread(t) if (t == 0) == own => Some((h.node, Class::Thread(t))),
                    _ => None,
                })
                .collect();
            self.spread(&seeds, &mut class, &mut parent);
        }
        if threads_unreadable {
            let class = class
                .into_iter()
                .map(|c| c.unwrap_or(Class::NotDetermined))
                .collect();
            return (class, parent);
        }
        let active: Vec<bool> = class.iter().map(Option::is_none).collect();
        let (comp, count) = tarjan(&self.edges, &active);
        let mut size = vec![0u32; count as usize];
        let mut entered = vec![false; count as usize];
        for u in (0..n).filter(|&u| active[u]) {
            size[comp[u] as usize] += 1;
            for &w in &self.edges[u] {
                let w = w as usize;
                if active[w] && comp[w] != comp[u] {
                    entered[comp[w] as usize] = true;
                }
            }
        }
        let seeds: Vec<(u32, Class)> = (0..n)
            .filter(|&u| active[u] && !entered[comp[u] as usize])
            .map(|u| {
                let c = comp[u];
                let looped = self.edges[u].contains(&(u as u32));
                let kind = if size[c as usize] > 1 || looped {
                    Class::Cycle(c)
                } else {
                    Class::Unreachable
                };
                (u as u32, kind)
            })
            .collect();
        self.spread(&seeds, &mut class, &mut parent);
        let class = class
            .into_iter()
            .map(|c| c.unwrap_or(Class::NotDetermined))
            .collect();
        (class, parent)
    }

    /// Breadth-first from `seeds` over blocks not classified yet.
    fn spread(
        &self,
        seeds: &[(u32, Class)],
        class: &mut [Option<Class>],
        parent: &mut [Option<u32>],
    ) {
        let mut queue = std::collections::VecDeque::new();
        for &(node, c) in seeds {
            if class[node as usize].is_none() {
                class[node as usize] = Some(c);
                queue.push_back(node);
            }
        }
        while let Some(u) = queue.pop_front() {
            let c = class[u as usize];
            for &w in &self.edges[u as usize] {
                if class[w as usize].is_none() {
                    class[w as usize] = c;
                    parent[w as usize] = Some(u);
                    queue.push_back(w);
                }
            }
        }
    }
}

/// The block that contains address `v`.
fn find(spans: &[Span], v: usize) -> Option<u32> {
    let i = spans.partition_point(|s| s.addr <= v).checked_sub(1)?;
    let s = spans[i];
    (v - s.addr < s.size).then_some(i as u32)
}

/// Strongly connected components of the subgraph of `active` nodes (Tarjan, iterative: a long
/// linked list must not overflow the stack). Returns each node's component and the count.
pub(crate) fn tarjan(edges: &[Vec<u32>], active: &[bool]) -> (Vec<u32>, u32) {
    const NONE: u32 = u32::MAX;
    let n = edges.len();
    let (mut index, mut low) = (vec![NONE; n], vec![0u32; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut comp) = (Vec::new(), vec![NONE; n]);
    let (mut next, mut count) = (0u32, 0u32);
    for s in 0..n {
        if !active[s] || index[s] != NONE {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(s, 0)];
        (index[s], low[s], on_stack[s]) = (next, next, true);
        next += 1;
        stack.push(s);
        while let Some(&(v, pos)) = calls.last() {
            if let Some(&w) = edges[v].get(pos) {
                calls.last_mut().unwrap().1 += 1;
                let w = w as usize;
                if !active[w] {
                    continue;
                }
                if index[w] == NONE {
                    (index[w], low[w], on_stack[w]) = (next, next, true);
                    next += 1;
                    stack.push(w);
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = count;
                    if w == v {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (comp, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[&[u32]], static_hits: &[u32], thread_hits: &[u32]) -> Graph {
        let spans = (0..edges.len())
            .map(|i| Span {
                addr: 0x1000 * (i + 1),
                size: 16,
            })
            .collect();
        let hit = |root| move |&node: &u32| Hit { node, root, at: 8 };
        let mut hits: Vec<Hit> = static_hits.iter().map(hit(Root::Static)).collect();
        hits.extend(thread_hits.iter().map(hit(Root::Thread(0))));
        Graph {
            spans,
            edges: edges.iter().map(|e| e.to_vec()).collect(),
            hits,
        }
    }

    #[test]
    fn classes_follow_the_strongest_holder() {
        // 0 <- static, 0 -> 1; 2 <- thread, 2 -> 1 (static wins); 3 <-> 4 -> 5; 6 -> 7; 8 -> 8.
        let g = graph(
            &[&[1], &[], &[1], &[4], &[3, 5], &[], &[7], &[], &[8]],
            &[0],
            &[2],
        );
        let (c, parent) = g.classify(false);
        assert_eq!(c[0], Class::Static { at: 8 });
        assert_eq!((c[1], parent[1]), (Class::Static { at: 8 }, Some(0)));
        assert_eq!(c[2], Class::Thread(0));
        assert!(matches!(c[3], Class::Cycle(_)) && c[3] == c[4] && c[4] == c[5]);
        assert_eq!(parent[5], Some(4));
        assert_eq!((c[6], parent[6]), (Class::Unreachable, None));
        assert_eq!((c[7], parent[7]), (Class::Unreachable, Some(6)));
        assert!(
            matches!(c[8], Class::Cycle(_)),
            "a block pointing at itself"
        );
        assert_ne!(c[8], c[3]);
        // A thread that could not be read: what no root reaches is not determined.
        let (c, _) = g.classify(true);
        assert_eq!((c[2], c[6]), (Class::Thread(0), Class::NotDetermined));
    }

    #[test]
    fn tarjan_survives_a_long_list() {
        let n = 200_000;
        let edges: Vec<Vec<u32>> = (0..n).map(|i| vec![((i + 1) % n) as u32]).collect();
        let (comp, count) = tarjan(&edges, &vec![true; n]);
        assert_eq!(count, 1);
        assert!(comp.iter().all(|&c| c == 0));
    }

    #[test]
    fn interior_words_point_into_their_block() {
        let spans = vec![
            Span {
                addr: 100,
                size: 10,
            },
            Span {
                addr: 200,
                size: 10,
            },
        ];
        assert_eq!(find(&spans, 100), Some(0));
        assert_eq!(find(&spans, 109), Some(0));
        assert_eq!(find(&spans, 110), None, "one past the end is not inside");
        assert_eq!(find(&spans, 99), None);
        assert_eq!(find(&spans, 205), Some(1));
    }
}
