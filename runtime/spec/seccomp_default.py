"""The linux.seccomp profile that `rootlet spec` writes.

In the spirit of Docker's default: deny with EPERM whatever is not listed,
allow the calls ordinary programs make, and leave out what only an
administrator of the host needs (mount, namespaces, modules, keyrings,
ptrace, bpf, perf, clock and reboot, kexec, swap, quotas, file handles).
clone is allowed only without namespace flags and personality only for the
usual personas; clone3, whose flags sit in memory a filter cannot read,
answers ENOSYS so that the C library falls back to clone.

A name the kernel or libseccomp does not know is skipped when the filter is
built (runtime.seccomp), so the list may name calls of every architecture.
"""

from __future__ import annotations

import os

ENOSYS = 38
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                         | 0x40000000)
# PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query only)
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

ALLOWED = """
read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek _llseek
sendfile sendfile64 splice tee vmsplice copy_file_range
open openat openat2 creat close close_range dup dup2 dup3 pipe pipe2 fcntl fcntl64 flock ioctl
fsync fdatasync sync syncfs sync_file_range sync_file_range2 arm_sync_file_range
truncate truncate64 ftruncate ftruncate64 fallocate fadvise64 fadvise64_64 arm_fadvise64_64 readahead

stat stat64 fstat fstat64 lstat lstat64 newfstatat fstatat64 statx statfs statfs64 fstatfs fstatfs64
access faccessat faccessat2 readlink readlinkat getdents getdents64 getcwd chdir fchdir
chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 fchownat lchown lchown32 umask
utime utimes utimensat utimensat_time64 futimesat
mkdir mkdirat mknod mknodat rmdir rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat
getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr
removexattr lremovexattr fremovexattr
inotify_init inotify_init1 inotify_add_watch inotify_rm_watch memfd_create

brk mmap mmap2 munmap mremap mprotect pkey_mprotect pkey_alloc pkey_free madvise mincore msync
mlock mlock2 munlock mlockall munlockall remap_file_pages membarrier cachestat map_shadow_stack

fork vfork execve execveat exit exit_group wait4 waitid waitpid kill tkill tgkill
getpid getppid gettid getpgid setpgid getpgrp getsid setsid
set_tid_address set_robust_list get_robust_list futex futex_time64 futex_waitv rseq restart_syscall pause
sched_yield sched_getaffinity sched_setaffinity sched_getparam sched_setparam sched_getscheduler
sched_setscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval
sched_rr_get_interval_time64 sched_getattr sched_setattr getpriority setpriority ioprio_get ioprio_set
prctl arch_prctl set_thread_area get_thread_area set_tls capget capset seccomp
uname sysinfo getrusage times getrlimit setrlimit ugetrlimit prlimit64 getcpu getrandom
pidfd_open pidfd_send_signal landlock_create_ruleset landlock_add_rule landlock_restrict_self

getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
setresuid setresuid32 setresgid setresgid32 getresuid getresuid32 getresgid getresgid32
setfsuid setfsuid32 setfsgid setfsgid32 getgroups getgroups32 setgroups setgroups32

rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo sigaction sigprocmask sigreturn sigpending
sigsuspend signal sigaltstack signalfd signalfd4 alarm

time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_nanosleep
clock_nanosleep_time64 nanosleep getitimer setitimer adjtimex
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64

select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 eventfd eventfd2

socket socketpair socketcall bind listen accept accept4 connect getsockname getpeername
getsockopt setsockopt sendto recvfrom send recv sendmsg recvmsg sendmmsg recvmmsg recvmmsg_time64 shutdown

shmget shmat shmdt shmctl semget semop semctl semtimedop semtimedop_time64 msgget msgsnd msgrcv msgctl
ipc mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64
mq_notify mq_getsetattr
io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
""".split()

_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
}


def profile(machine: str = "") -> dict:
    """The default profile for `machine` (os.uname().machine by default)."""
    machine = machine or os.uname().machine
    # clone's flags are its first argument, except on s390 where they are the second.
    flags_arg = 1 if machine.startswith("s390") else 0
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": list(_ARCHITECTURES.get(machine, [])),
        "syscalls": [
            {"names": list(ALLOWED), "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"} for persona in PERSONAS]},
        ],
    }
