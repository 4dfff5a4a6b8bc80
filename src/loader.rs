//! What the dynamic loader says about an address: the file of the loaded object it lies in
//! (`dladdr`). Used to name the object that took `malloc` (`counting::c_heap`) and the object a
//! static without a symbol belongs to (`diagnosis::retention`). Imports nothing of the crate.

/// The path of the loaded object whose memory holds `addr`, as the loader has it; `None` where
/// no loaded object holds it (or off Unix, or in a static binary without a loader).
#[cfg(unix)]
pub(crate) fn object_path(addr: usize) -> Option<String> {
    // SAFETY: `dladdr` only reads the loader's tables and fills `info`; `dli_fname` is checked for
    // null and then points to a NUL-terminated string the loader owns while the object is loaded.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        let path = std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy();
        (!path.is_empty()).then(|| path.into_owned())
    }
}

#[cfg(not(unix))]
pub(crate) fn object_path(_addr: usize) -> Option<String> {
    None
}

/// The file name alone of [`object_path`] (`libc.so.6`).
pub(crate) fn object_name(addr: usize) -> Option<String> {
    let path = object_path(addr)?;
    Some(path.rsplit('/').next().unwrap_or(&path).to_string())
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// A function or static of a loaded object is named by its object's file.
    #[test]
    fn an_address_is_named_by_its_object() {
        let libc_fn = libc::strlen as *const () as usize;
        let object = super::object_name(libc_fn).expect("strlen is in a loaded object");
        assert!(object.starts_with("libc"), "{object}");
        assert!(super::object_path(libc_fn).unwrap().ends_with(&object));
        static MINE: u8 = 0;
        let exe = std::env::current_exe().unwrap();
        let exe = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(super::object_name(&MINE as *const u8 as usize), Some(exe));
        assert_eq!(super::object_name(8), None);
    }
}
