//! `mutex/c-abi`: the C ABI's overhead (goal: within 1.2× of the Rust API; docs/PORTING.md).
//! `WaitForSingleObject` + `ReleaseMutex` on a `HANDLE` through the exported functions
//! of procsync-ffi, paired with `Mutex::lock` + `unlock` through the Rust API, both
//! uncontended.

use procsync::{Mutex, WaitOutcome};
use procsync_ffi::c_abi as c;

use crate::{Plan, Report, paired, times};

/// A mutex opened through the C ABI and one through the Rust API.
pub struct CAbiMutexOps {
    h: c::HANDLE,
    m: Mutex,
}

impl CAbiMutexOps {
    /// Creates both mutexes (named, like `mutex/uncontended`'s).
    pub fn create() -> CAbiMutexOps {
        // SAFETY: NULL security attributes and a NUL-terminated name, as the C ABI wants.
        let h = unsafe {
            c::procsync_CreateMutexA(std::ptr::null(), 0, c"Local\\bench-mutex-c-abi".as_ptr())
        };
        assert!(
            !h.is_null(),
            "CreateMutexA failed with error {}",
            c::procsync_GetLastError()
        );
        let (m, _) = Mutex::create("Local\\bench-mutex-rust-api", false).expect("creating a mutex");
        let ops = CAbiMutexOps { h, m };
        // The first call into the C ABI does the process's one-time set-up (the
        // duplication endpoint, the handle table's membarrier registration, which
        // waits for an RCU grace period in the kernel); outside the timed blocks, or
        // the calibration would size them from it.
        assert_eq!(
            c::procsync_WaitForSingleObject(ops.h, c::INFINITE),
            c::WAIT_OBJECT_0,
            "WaitForSingleObject failed with error {}",
            c::procsync_GetLastError()
        );
        assert_eq!(
            c::procsync_ReleaseMutex(ops.h),
            c::TRUE,
            "ReleaseMutex failed"
        );
        ops
    }

    /// `WaitForSingleObject(h, INFINITE)` + `ReleaseMutex(h)`.
    #[inline]
    pub fn c_abi(&self) {
        let r = c::procsync_WaitForSingleObject(self.h, c::INFINITE);
        assert!(r == c::WAIT_OBJECT_0, "WaitForSingleObject failed");
        let r = c::procsync_ReleaseMutex(self.h);
        assert!(r == c::TRUE, "ReleaseMutex failed");
    }

    /// `Mutex::lock(None)` + `unlock()`.
    #[inline]
    pub fn rust(&self) {
        let locked = matches!(self.m.wait(None), Ok(WaitOutcome::Signaled(0)));
        assert!(locked, "Mutex::wait failed");
        let unlocked = matches!(self.m.unlock(), Ok(1));
        assert!(unlocked, "Mutex::unlock failed");
    }

    /// The paired row.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        let s = paired(
            &mut times(|| self.c_abi()),
            &mut times(|| self.rust()),
            plan.uncontended,
        );
        report.pair(
            "mutex/c-abi",
            "procsync C ABI",
            "procsync Rust API",
            "per op",
            s,
        );
    }
}

impl Drop for CAbiMutexOps {
    fn drop(&mut self) {
        c::procsync_CloseHandle(self.h);
    }
}
