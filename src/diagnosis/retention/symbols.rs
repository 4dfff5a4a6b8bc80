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

    /// The static whose bytes contain `addr`, by its Rust path; a static the executable's
    /// symbols do not name is named by the object it is in (`libc.so.6` tells the reader that
    /// glibc holds it).
    pub(crate) fn describe(&self, addr: usize) -> String {
        if let Some(name) = self.name(addr) {
            return name.to_string();
        }
        match crate::loader::object_name(addr) {
            Some(object) => format!("<a static of {object} at {addr:#x} with no symbol>"),
            None => format!("<a static at {addr:#x} with no symbol>"),
        }
    }

    /// The static whose bytes contain `addr`.
    fn name(&self, addr: usize) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.syms[i];
        (addr - start < (*size).max(1)).then_some(name.as_str())
    }
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
