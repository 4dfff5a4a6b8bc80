//! The retention run and the merge of its result. A test that leaked heap runs once more, alone
//! in a fresh process (isolation starts it: `isolation::retain`), with capture on from the body's
//! first run: as many runs as the failing check made before its diagnostic run (confirmation
//! windows included, so that a buffer that only grew after many runs is there to be classified),
//! then the diagnostic run, then the scan ([`classify`]). The process that found the leak then
//! matches those sites to its own by allocating frame ([`attach`]).

use std::time::Duration;

use crate::counting::capture::{self, Capture, Who};
use crate::diagnosis::retention::{memory, scan, sites_held, HeldBy, Holder};
use crate::diagnosis::sites::Site;

/// Gives every site its holder from `found`, the sites of a retention run (matched by allocating
/// frame), or "not determined" with the reason there are none.
pub(crate) fn attach(sites: &mut [Site], found: Result<Vec<Site>, String>) {
    for site in sites.iter_mut() {
        site.held_by = Some(match &found {
            Ok(theirs) => theirs
                .iter()
                .find(|t| t.frame == site.frame)
                .and_then(|t| t.held_by.clone())
                .unwrap_or_else(|| not_determined("the retention run did not reproduce this site")),
            Err(why) => not_determined(why),
        });
    }
}

fn not_determined(why: &str) -> HeldBy {
    HeldBy {
        holder: Holder::NotDetermined(why.to_string()),
        via: Vec::new(),
        blocks: 0,
    }
}

/// The retention run, in the process started for it: runs `body` (`true`: it succeeded) `runs`
/// times and once more with capture on, and gives the sites of that last run, each with its
/// holder.
#[inline(never)]
pub(crate) fn classify(runs: u32, body: &mut dyn FnMut() -> bool) -> Result<Vec<Site>, String> {
    // Everything the body ran in lies below this frame; the scan reads the stack from here up.
    let marker = 0u8;
    let entry = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    if !memory::available() {
        return Err("this system does not let a process read its own memory \
                    (process_vm_readv)"
            .into());
    }
    let capture = Capture::start_within(Who::NotMain, Duration::from_secs(10))
        .ok_or("another capture session was running")?;
    let mut run = || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *body)) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the body failed in the retention run".to_string()),
        Err(_) => Err("the body panicked in the retention run".to_string()),
    };
    for _ in 0..runs {
        run()?;
    }
    let first = capture::next_seq();
    run()?;
    let end = capture::next_seq();
    let scanned = scan(capture, entry);
    Ok(sites_held(&scanned, first, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::sites::Frame;

    fn site(function: &str, held_by: Option<HeldBy>) -> Site {
        Site {
            bytes: 8,
            blocks: 1,
            frame: Some(Frame {
                function: function.into(),
                file: Some("tests/x.rs".into()),
                line: Some(1),
            }),
            context: Vec::new(),
            spawns_thread: false,
            c_heap: false,
            held_by,
        }
    }

    #[test]
    fn sites_take_the_holder_of_the_run_s_site_with_their_frame() {
        let held = HeldBy {
            holder: Holder::Static("x::REG".into()),
            via: Vec::new(),
            blocks: 1,
        };
        let mut mine = [site("x::a", None), site("x::b", None)];
        attach(&mut mine, Ok(vec![site("x::a", Some(held.clone()))]));
        assert_eq!(mine[0].held_by, Some(held));
        assert_eq!(
            mine[1].held_by,
            Some(not_determined(
                "the retention run did not reproduce this site"
            ))
        );
        attach(&mut mine, Err("no luck".into()));
        assert!(mine
            .iter()
            .all(|s| s.held_by == Some(not_determined("no luck"))));
    }
}
