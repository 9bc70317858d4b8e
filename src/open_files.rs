//! The process's limit on open files, raised for servers.

/// Lifts the soft limit on open files (RLIMIT_NOFILE) to the hard one, as servers do: the soft
/// limit is often 1024 against a hard 1048576 in containers, and every connection, lock and
/// checkpoint holds a descriptor. Failure is logged and otherwise ignored: the old limit stays.
pub fn raise_soft_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!("could not raise the open-files limit");
            }
        }
    }
}
