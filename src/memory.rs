//! How ferry's memory goes back to the system. glibc's allocator keeps what a phase frees for
//! later, and once a large block has been freed it raises its threshold for mapping large
//! blocks apart, so later large blocks come from (and are freed into) the heap it keeps: a
//! long list's plan would stay in the process all through its copies, and a vector of results
//! that grows would leave its old room behind at each step. Elsewhere these do nothing.

/// Blocks of this size and more are mapped apart, and unmapped (or moved by the kernel, when
/// they grow) rather than kept: a hundred thousand entries' vectors are tens of MB each.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM: libc::c_int = 4 << 20;

/// Called once, before any work: large blocks are always mapped apart (see the module's text).
pub fn map_large_blocks_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets a tunable of glibc's allocator; it takes no pointer, and is called
    // before the runtime starts any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM);
    }
}

/// Gives the memory the allocator holds free back to the system: at the end of a phase that
/// freed much (a long plan, once split into its copies).
pub fn give_back_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases pages glibc's allocator holds free; it takes no
    // pointer and may be called at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
