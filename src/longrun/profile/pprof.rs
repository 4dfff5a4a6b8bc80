//! Snapshots as pprof `profile.proto`, gzip-compressed, as `go tool pprof` and other viewers read.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use prost::Message;

use super::proto::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use super::{Snapshot, StackSample};
use crate::diagnosis::sites::Frame;

/// The string table under construction.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

const COMMENT: &str = "no_leak heap profile: blocks allocated since the profiler started and \
                       live when the snapshot was taken, on every thread; exact, not sampled";

#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
impl Snapshot {
    /// The snapshot as a pprof `Profile` message: one sample per distinct stack, with the values
    /// `inuse_objects` (blocks, unit `count`) and `inuse_space` (bytes, unit `bytes`), the
    /// default; one location per frame, with its function, file and line; a single mapping for
    /// the executable, marked as already symbolised. Feature `pprof`.
    pub fn to_pprof(&self) -> Profile {
        crate::counting::capture::without_capture(|| self.build())
    }

    /// The snapshot as gzip-compressed pprof `profile.proto` bytes: what Go's
    /// `/debug/pprof/heap` serves, and what `go tool pprof` opens. Feature `pprof`.
    pub fn to_pprof_bytes(&self) -> Vec<u8> {
        crate::counting::capture::without_capture(|| {
            let raw = self.build().encode_to_vec();
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4 + 64),
                flate2::Compression::default(),
            );
            gz.write_all(&raw)
                .and_then(|()| gz.finish())
                .expect("gzip into memory does not fail")
        })
    }

    /// Writes [`to_pprof_bytes`](Snapshot::to_pprof_bytes) to `path` (conventionally
    /// `*.pb.gz`), for `go tool pprof -top path` or `go tool pprof -top -base base.pb.gz path`.
    /// Feature `pprof`.
    pub fn write_pprof(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let bytes = self.to_pprof_bytes();
        std::fs::write(path, bytes)
    }

    fn build(&self) -> Profile {
        let mut tables = Tables {
            strings: Strings::new(),
            ..Tables::default()
        };
        let value_type = |t: &mut Tables, kind: &str, unit: &str| ValueType {
            r#type: t.strings.get(kind),
            unit: t.strings.get(unit),
        };
        let inuse_objects = value_type(&mut tables, "inuse_objects", "count");
        let inuse_space = value_type(&mut tables, "inuse_space", "bytes");
        let period_type = value_type(&mut tables, "space", "bytes");
        let mapping = tables.mapping();
        let samples = self
            .stacks
            .iter()
            .map(|stack| Sample {
                location_id: tables.locations_of(stack, mapping.id),
                value: vec![stack.blocks, stack.bytes],
                label: Vec::new(),
            })
            .collect();
        let time_nanos = self
            .taken
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let comment = vec![tables.strings.get(COMMENT)];
        let default_sample_type = inuse_space.r#type;
        Profile {
            sample_type: vec![inuse_objects, inuse_space],
            sample: samples,
            mapping: vec![mapping],
            location: tables.locations,
            function: tables.functions,
            string_table: tables.strings.table,
            drop_frames: 0,
            keep_frames: 0,
            time_nanos,
            duration_nanos: self.since_start.as_nanos() as i64,
            period_type: Some(period_type),
            period: 1,
            comment,
            default_sample_type,
        }
    }
}

/// The profile's deduplicated tables: strings, functions and locations, each with its ids. The
/// string table must start with "" ([`Strings::new`]).
#[derive(Default)]
struct Tables {
    strings: Strings,
    functions: Vec<Function>,
    function_ids: HashMap<(String, Option<String>), u64>,
    locations: Vec<Location>,
    location_ids: HashMap<(u64, u64, i64), u64>,
}

impl Tables {
    /// The one mapping: the executable, which every address belongs to.
    fn mapping(&mut self) -> Mapping {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Mapping {
            id: 1,
            memory_start: 0,
            memory_limit: u64::MAX,
            file_offset: 0,
            filename: self.strings.get(&exe),
            build_id: 0,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
        }
    }

    /// The location ids of a stack's frames, innermost first.
    fn locations_of(&mut self, stack: &StackSample, mapping_id: u64) -> Vec<u64> {
        let frames = stack.frames.iter().zip(&stack.addresses);
        frames
            .map(|(frame, &address)| {
                let function_id = self.function(frame);
                let line = i64::from(frame.line.unwrap_or(0));
                self.location(address, function_id, line, mapping_id)
            })
            .collect()
    }

    fn function(&mut self, frame: &Frame) -> u64 {
        let key = (frame.function.clone(), frame.file.clone());
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        self.functions.push(Function {
            id,
            name: self.strings.get(&frame.function),
            system_name: self.strings.get(&frame.function),
            filename: self.strings.get(frame.file.as_deref().unwrap_or("")),
            start_line: 0,
        });
        self.function_ids.insert(key, id);
        id
    }

    fn location(&mut self, address: u64, function_id: u64, line: i64, mapping_id: u64) -> u64 {
        if let Some(&id) = self.location_ids.get(&(address, function_id, line)) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location {
            id,
            mapping_id,
            address,
            line: vec![Line {
                function_id,
                line,
                column: 0,
            }],
            is_folded: false,
        });
        self.location_ids.insert((address, function_id, line), id);
        id
    }
}
