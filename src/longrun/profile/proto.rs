//! The messages of pprof's
//! [`profile.proto`](https://github.com/google/pprof/blob/main/proto/profile.proto), declared
//! for [prost](https://docs.rs/prost): what [`Snapshot::to_pprof`](super::Snapshot::to_pprof)
//! builds, and what [`Profile::from_pprof_bytes`] reads back. Fields keep the names and
//! numbers of the `.proto` file, whose comments say what each means; string fields are
//! indices into `string_table`, whose entry 0 is `""`.

/// prost's trait: `encode_to_vec`, `decode` and the rest, for these messages.
pub use prost::Message;

use std::io::Read;

/// A profile: samples, the stacks they point at, and the strings they use.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Profile {
    /// What each of a sample's values measures; here `inuse_objects`/`count` and
    /// `inuse_space`/`bytes`.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// One sample per distinct stack.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// The mapped binaries the addresses lie in.
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    /// Locations referenced by samples (`Sample::location_id`).
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions referenced by locations (`Line::function_id`).
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string of the profile; entry 0 is `""`.
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// Regular expression (string index) of frames to drop.
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// Regular expression (string index) of frames to keep.
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    /// When the profile was taken, in nanoseconds since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// How long the profile covers.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// What one period of sampling measures.
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// The sampling period; 1 here: every allocation is recorded.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form comments (string indices).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// The sample type (string index) a viewer shows first.
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// A kind of value and its unit, as string indices.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct ValueType {
    /// The kind (string index), e.g. `inuse_space`.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// The unit (string index), e.g. `bytes`.
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// Values measured along one stack.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Sample {
    /// The stack, leaf first: ids of `Profile::location`.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per `Profile::sample_type`.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Extra information on the sample.
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A key and a string or numeric value attached to a sample.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Label {
    /// The key (string index).
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// A string value (string index), or 0.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// A numeric value.
    #[prost(int64, tag = "3")]
    pub num: i64,
    /// The unit of `num` (string index).
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// A mapped binary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Mapping {
    /// Unique nonzero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Start of the address range.
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    /// End of the address range.
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    /// Offset in the binary of `memory_start`.
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// The binary's path (string index).
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// The binary's build id (string index).
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    /// Locations in this mapping have function names: no symbolisation is needed.
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    /// Locations have file names.
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    /// Locations have line numbers.
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    /// Locations have inlined frames.
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// One place in the code: an address, and the source lines it stands for.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Location {
    /// Unique nonzero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The mapping the address lies in (0: none).
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    /// The instruction address.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Source lines, innermost (inlined) first, the caller last.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    /// Whether several symbols were folded into one address.
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// A source line in a function.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Line {
    /// The function: an id of `Profile::function`.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// The line number (0: unknown).
    #[prost(int64, tag = "2")]
    pub line: i64,
    /// The column number (0: unknown).
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// A function.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Function {
    /// Unique nonzero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The name for people (string index): demangled, without the hash.
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// The name the linker knows (string index); here the same as `name`.
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// The source file (string index).
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// The line the function starts on (0: unknown).
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

impl Profile {
    /// Decodes a profile from its bytes, gzip-compressed (as written by
    /// [`Snapshot::write_pprof`](crate::profile::Snapshot::write_pprof) and served by Go's
    /// `/debug/pprof/heap`) or not.
    pub fn from_pprof_bytes(bytes: &[u8]) -> std::io::Result<Profile> {
        decode(bytes)
    }

    /// The string at `index` in the string table (`""` when out of range).
    pub fn string(&self, index: i64) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.string_table.get(i))
            .map_or("", String::as_str)
    }
}

/// A profile from its bytes, gunzipped first when they are gzip-compressed.
fn decode(bytes: &[u8]) -> std::io::Result<Profile> {
    let plain;
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
        plain = out;
        &plain[..]
    } else {
        bytes
    };
    Profile::decode(raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
