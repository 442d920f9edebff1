//! User-space tables keyed by fd, for the backends that keep their own
//! registrations (poll(2), and kqueue's record of which filters an fd has).

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use super::cvt;

/// A map from fd number to `T`. fds are small, dense integers, so below
/// `DENSE` it is a table indexed by the fd (no hashing on hot paths such as
/// kqueue's re-arm after every short read, or any poll(2) change); the rare
/// fd above that (one `dup2`'d high, say) goes to a hash map, so the table
/// never grows past `DENSE` slots.
#[derive(Debug)]
pub(crate) struct FdMap<T> {
    dense: Vec<Option<T>>,
    sparse: HashMap<RawFd, T>,
}

impl<T> Default for FdMap<T> {
    fn default() -> FdMap<T> {
        FdMap {
            dense: Vec::new(),
            sparse: HashMap::new(),
        }
    }
}

impl<T: Copy> FdMap<T> {
    const DENSE: usize = 1 << 16;

    pub(crate) fn get(&self, fd: RawFd) -> Option<T> {
        match usize::try_from(fd).ok()? {
            i if i < Self::DENSE => *self.dense.get(i)?,
            _ => self.sparse.get(&fd).copied(),
        }
    }

    /// `fd` is open (checked by the caller), so it is not negative.
    pub(crate) fn set(&mut self, fd: RawFd, value: T) {
        let i = fd as usize;
        if i >= Self::DENSE {
            self.sparse.insert(fd, value);
            return;
        }
        if i >= self.dense.len() {
            self.dense.resize(i + 1, None);
        }
        self.dense[i] = Some(value);
    }

    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<T> {
        match usize::try_from(fd) {
            Ok(i) if i < Self::DENSE => self.dense.get_mut(i)?.take(),
            _ => self.sparse.remove(&fd),
        }
    }
}

/// Which file an fd refers to (device and inode). An fd that was closed
/// without being deregistered may be reused for another file before the
/// backend notices; a backend that keeps its own table compares this to
/// tell that stale entry from a real second registration, and accepts the
/// new file, as epoll does.
///
/// It cannot tell two files that share an inode apart: a pipe's two ends,
/// or the anonymous-inode files (eventfd, timerfd, signalfd) on Linux. And
/// only Linux and FreeBSD give each pipe a lasting, unique inode: NetBSD and
/// OpenBSD leave `st_dev` and `st_ino` 0 for every pipe (`pipe_stat`: "Left
/// as 0"), macOS hashes the kernel address (reused after free), DragonFly
/// numbers the pipe (both ends alike) and keeps the number when it recycles
/// the pipe (docs/kqueue.md, row b). There an equal `FileId` says nothing,
/// and the poll(2) backend takes the record as still the fd's: the limit is
/// documented on `SourceFd`. The kqueue backend does not use it: it asks
/// the kernel instead.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// `fstat`s `fd`, which also checks that it is open (EBADF otherwise).
    pub(crate) fn of(fd: RawFd) -> io::Result<FileId> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes a whole `stat` on success.
        cvt(unsafe { libc::fstat(fd, stat.as_mut_ptr()) })?;
        // SAFETY: fstat succeeded, so `stat` is initialised.
        let stat = unsafe { stat.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the widths differ per OS
        Ok(FileId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FdMap;

    #[test]
    fn low_and_high_fds_round_trip() {
        let mut map = FdMap::default();
        for fd in [0, 3, 65_535, 65_536, 1 << 30] {
            assert_eq!(map.get(fd), None);
            map.set(fd, fd as u64 * 2);
            assert_eq!(map.get(fd), Some(fd as u64 * 2));
        }
        assert_eq!(map.remove(65_536), Some(131_072));
        assert_eq!(map.get(65_536), None);
        assert_eq!(map.remove(3), Some(6));
        assert_eq!(map.remove(3), None);
        assert_eq!(map.get(-1), None);
        assert_eq!(map.remove(-1), None);
        assert!(
            map.dense.len() <= 1 << 16,
            "a high fd must not grow the table"
        );
    }
}
