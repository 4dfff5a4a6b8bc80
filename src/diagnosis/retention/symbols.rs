//! Names of statics: the symbol-table entry (`.symtab` of the executable) covering a data
//! address, demangled as Rust writes the path (`my_crate::memo::M`).
//!
//! The executable is read from `/proc/self/exe` with the `object` crate; no lock is taken, so
//! naming cannot deadlock against capture or the backtrace crate's symbolizer.

/// Data symbols of the executable, at their addresses in this process, sorted.
pub(crate) struct Statics {
    syms: Vec<(usize, usize, String)>,
}

impl Statics {
    /// Loads the symbol table; `bias` is the executable's load address (its `dlpi_addr`).
    /// Empty if it cannot be read (a stripped binary has no `.symtab`).
    pub(crate) fn load(bias: usize) -> Statics {
        let mut syms = read_symbols(bias).unwrap_or_default();
        syms.sort_unstable_by_key(|s| s.0);
        Statics { syms }
    }

    /// The static whose bytes contain `addr`.
    pub(crate) fn name(&self, addr: usize) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.syms[i];
        (addr - start < (*size).max(1)).then_some(name.as_str())
    }
}

/// The file name of the loaded object whose memory holds `addr` (`dladdr`), for a static the
/// executable's symbol table does not name: `libc.so.6` tells the reader that glibc holds it.
#[cfg(unix)]
pub(crate) fn object_of(addr: usize) -> Option<String> {
    // SAFETY: `dladdr` only reads the loader's tables and fills `info`; `dli_fname` is checked for
    // null and then points to a NUL-terminated string the loader owns while the object is loaded.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        let path = std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy();
        let name = path.rsplit('/').next().unwrap_or(&path);
        (!name.is_empty()).then(|| name.to_string())
    }
}

#[cfg(not(unix))]
pub(crate) fn object_of(_addr: usize) -> Option<String> {
    None
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn read_symbols(bias: usize) -> Option<Vec<(usize, usize, String)>> {
    use object::read::elf::{FileHeader, Sym};
    let data = std::fs::read("/proc/self/exe").ok()?;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, &*data).ok()?;
    let table = sections
        .symbols(endian, &*data, object::elf::SHT_SYMTAB)
        .ok()?;
    let mut out = Vec::new();
    for sym in table.iter() {
        let kind = sym.st_type();
        // Thread-local symbols (`STT_TLS`) hold offsets, not addresses: left out.
        if kind != object::elf::STT_OBJECT || sym.st_shndx(endian) == object::elf::SHN_UNDEF {
            continue;
        }
        let Ok(raw) = sym.name(endian, table.strings()) else {
            continue;
        };
        let name = format!("{:#}", backtrace::SymbolName::new(raw));
        let start = bias.wrapping_add(sym.st_value(endian) as usize);
        out.push((start, sym.st_size(endian) as usize, name));
    }
    Some(out)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn read_symbols(_bias: usize) -> Option<Vec<(usize, usize, String)>> {
    None
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// A static or function of a loaded object is named by its object's file name.
    #[test]
    fn an_address_is_named_by_its_object() {
        let libc_fn = libc::strlen as *const () as usize;
        let object = super::object_of(libc_fn).expect("strlen is in a loaded object");
        assert!(object.starts_with("libc"), "{object}");
        static MINE: u8 = 0;
        let exe = std::env::current_exe().unwrap();
        let exe = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(super::object_of(&MINE as *const u8 as usize), Some(exe));
        assert_eq!(super::object_of(8), None);
    }
}
