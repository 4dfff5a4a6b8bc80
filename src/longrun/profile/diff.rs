//! What changed between two snapshots, site by site.

use std::collections::HashMap;
use std::time::Duration;

use super::Snapshot;
use crate::counting::capture::without_capture;
use crate::diagnosis::sites::Frame;
#[cfg(doc)]
use crate::diagnosis::sites::Site;

impl Snapshot {
    /// What changed from `base` to this snapshot, site by site: the biggest growers first, then
    /// the sites that did not change, then those that shrank or vanished, the biggest shrink
    /// first. Like `go tool pprof -base base.pb.gz this.pb.gz`.
    pub fn diff(&self, base: &Snapshot) -> Diff {
        without_capture(|| {
            let mut rows: Vec<SiteDelta> = Vec::new();
            let mut index: HashMap<Option<&Frame>, usize> = HashMap::new();
            for s in &self.sites {
                index.insert(s.frame.as_ref(), rows.len());
                rows.push(SiteDelta {
                    frame: s.frame.clone(),
                    context: s.context.clone(),
                    base_bytes: 0,
                    base_blocks: 0,
                    bytes: s.bytes as i64,
                    blocks: s.blocks as i64,
                });
            }
            for s in &base.sites {
                match index.get(&s.frame.as_ref()) {
                    Some(&i) => {
                        rows[i].base_bytes = s.bytes as i64;
                        rows[i].base_blocks = s.blocks as i64;
                    }
                    None => rows.push(SiteDelta {
                        frame: s.frame.clone(),
                        context: s.context.clone(),
                        base_bytes: s.bytes as i64,
                        base_blocks: s.blocks as i64,
                        bytes: 0,
                        blocks: 0,
                    }),
                }
            }
            rows.sort_by(|a, b| {
                let (ka, kb) = (a.sort_key(), b.sort_key());
                ka.cmp(&kb).then_with(|| a.location().cmp(&b.location()))
            });
            Diff {
                base_bytes: base.bytes,
                base_blocks: base.blocks,
                bytes: self.bytes,
                blocks: self.blocks,
                between: self.since_start.saturating_sub(base.since_start),
                sites: rows,
            }
        })
    }
}

/// How one site changed between two snapshots.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteDelta {
    /// The site: the first frame in the user's own code (see [`Site::frame`]).
    pub frame: Option<Frame>,
    /// A few of its callers, innermost first.
    pub context: Vec<Frame>,
    /// Bytes live from this site in the base snapshot.
    pub base_bytes: i64,
    /// Blocks live from this site in the base snapshot.
    pub base_blocks: i64,
    /// Bytes live from this site in the later snapshot.
    pub bytes: i64,
    /// Blocks live from this site in the later snapshot.
    pub blocks: i64,
}

impl SiteDelta {
    /// Growth of live bytes (negative: shrank).
    pub fn delta_bytes(&self) -> i64 {
        self.bytes - self.base_bytes
    }

    /// Growth of live blocks (negative: shrank).
    pub fn delta_blocks(&self) -> i64 {
        self.blocks - self.base_blocks
    }

    /// Whether the site grew: more live bytes, or as many bytes in more blocks.
    pub fn grew(&self) -> bool {
        (self.delta_bytes(), self.delta_blocks()) > (0, 0)
    }

    /// Whether the site shrank or vanished.
    pub fn shrank(&self) -> bool {
        (self.delta_bytes(), self.delta_blocks()) < (0, 0)
    }

    /// `file:line` of the site, or `<unresolved>`.
    pub fn location(&self) -> String {
        self.frame
            .as_ref()
            .map_or_else(|| "<unresolved>".into(), Frame::location)
    }

    /// Growers by growth, descending; then unchanged; then shrinkers by shrink, descending.
    fn sort_key(&self) -> (u8, i64, i64) {
        let (b, n) = (self.delta_bytes(), self.delta_blocks());
        if self.grew() {
            (0, -b, -n)
        } else if self.shrank() {
            (2, b, n)
        } else {
            (1, -self.bytes, 0)
        }
    }
}

/// What changed between two snapshots, from [`Snapshot::diff`].
///
/// Its `Display` is a table like `go tool pprof -top -base`: the growers (ten rows; `{:.N}` for
/// `N`, `{:#}` for all), then the sites that shrank, and a count of those unchanged.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// Live bytes in the base snapshot.
    pub base_bytes: i64,
    /// Live blocks in the base snapshot.
    pub base_blocks: i64,
    /// Live bytes in the later snapshot.
    pub bytes: i64,
    /// Live blocks in the later snapshot.
    pub blocks: i64,
    /// Time between the two snapshots.
    pub between: Duration,
    /// Every site live in either snapshot: the biggest growers first, then the unchanged ones,
    /// then those that shrank or vanished, the biggest shrink first.
    pub sites: Vec<SiteDelta>,
}

impl Diff {
    /// Growth of live bytes over all sites.
    pub fn delta_bytes(&self) -> i64 {
        self.bytes - self.base_bytes
    }

    /// Growth of live blocks over all sites.
    pub fn delta_blocks(&self) -> i64 {
        self.blocks - self.base_blocks
    }

    /// The sites that grew, the biggest growth first.
    pub fn growing(&self) -> impl Iterator<Item = &SiteDelta> {
        self.sites.iter().take_while(|s| s.grew())
    }

    /// The sites that shrank or vanished, the biggest shrink first.
    pub fn shrinking(&self) -> impl Iterator<Item = &SiteDelta> {
        self.sites.iter().filter(|s| s.shrank())
    }

    /// The row of the site allocating at `file:line`, if it is live in either snapshot.
    pub fn site_at(&self, file: &str, line: u32) -> Option<&SiteDelta> {
        self.sites.iter().find(|s| {
            s.frame
                .as_ref()
                .is_some_and(|f| f.file.as_deref() == Some(file) && f.line == Some(line))
        })
    }
}
