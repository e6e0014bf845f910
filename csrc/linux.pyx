# cython: language_level=3, boundscheck=False, wraparound=False, binding=False
"""Direct Linux system calls that Python's os module lacks, and the few a
command needs from fcntl, select and _socket (flock, poll, a socketpair, fd
passing): each of those modules is a shared object to load, ~0.15 ms and
~60 KB of peak memory for one function.

Every wrapper raises OSError(errno, strerror, filename) on failure, so the
caller can turn it into a RootletError naming the step. Nothing here decides
policy: the plans in runtime/ say what to call, in which order.
"""

from libc.errno cimport errno, EINTR
from libc.string cimport memset
from libc.stdint cimport uint32_t, uint64_t
from posix.types cimport pid_t


cdef extern from "<sys/syscall.h>":
    long SYS_pivot_root
    long SYS_capget
    long SYS_capset
    long SYS_openat2
    long SYS_mount_setattr
    long SYS_close_range
    long SYS_pidfd_send_signal

cdef extern from "<unistd.h>":
    long syscall(long number, ...)
    int sethostname(const char *name, size_t length)
    int setdomainname(const char *name, size_t length)

cdef extern from "<sched.h>":
    int unshare(int flags)
    int setns(int fd, int nstype)

cdef extern from "<sys/mount.h>":
    int c_mount "mount"(const char *source, const char *target, const char *fstype,
                        unsigned long flags, const void *data)
    int c_umount2 "umount2"(const char *target, int flags)

cdef extern from "<sys/prctl.h>":
    int c_prctl "prctl"(int option, unsigned long arg2, unsigned long arg3,
                        unsigned long arg4, unsigned long arg5)

cdef extern from "<sys/personality.h>":
    int c_personality "personality"(unsigned long persona)

cdef extern from "<sys/resource.h>":
    ctypedef unsigned long rlim_t
    struct rlimit:
        rlim_t rlim_cur
        rlim_t rlim_max
    int c_setrlimit "setrlimit"(int resource, const rlimit *rlim)

cdef extern from "<sys/ioctl.h>":
    int c_ioctl "ioctl"(int fd, unsigned long request, ...)

cdef extern from "<termios.h>":
    unsigned long TIOCSCTTY
    unsigned long TIOCSWINSZ

cdef extern from "<sys/ioctl.h>":
    struct winsize:
        unsigned short ws_row
        unsigned short ws_col
        unsigned short ws_xpixel
        unsigned short ws_ypixel


cdef struct cap_header:
    uint32_t version
    int pid

cdef struct cap_data:
    uint32_t effective
    uint32_t permitted
    uint32_t inheritable

cdef struct open_how:
    uint64_t flags
    uint64_t mode
    uint64_t resolve

cdef struct mount_attr:
    uint64_t attr_set
    uint64_t attr_clr
    uint64_t propagation
    uint64_t userns_fd

DEF LINUX_CAPABILITY_VERSION_3 = 0x20080522


cdef inline int _check(long result, object filename=None) except -1:
    if result < 0:
        _fail(errno, filename)
    return 0


cdef int _fail(int code, object filename) except -1:
    import os
    if filename is None:
        raise OSError(code, os.strerror(code))
    raise OSError(code, os.strerror(code), filename)


def mount(source, target, fstype, unsigned long flags, data=None):
    """mount(2); `source`, `fstype` and `data` may be None."""
    cdef bytes b_source = _fs(source) if source is not None else None
    cdef bytes b_target = _fs(target)
    cdef bytes b_fstype = _fs(fstype) if fstype is not None else None
    cdef bytes b_data = _fs(data) if data else None
    _check(c_mount(<const char *>b_source if b_source is not None else NULL,
                   b_target,
                   <const char *>b_fstype if b_fstype is not None else NULL,
                   flags,
                   <const void *><const char *>b_data if b_data is not None else NULL),
           target)


def umount2(target, int flags=0):
    cdef bytes b_target = _fs(target)
    _check(c_umount2(b_target, flags), target)


def pivot_root(new_root, put_old):
    cdef bytes b_new = _fs(new_root)
    cdef bytes b_old = _fs(put_old)
    _check(syscall(SYS_pivot_root, <const char *>b_new, <const char *>b_old), new_root)


def unshare_namespaces(int flags):
    _check(unshare(flags))


def join_namespace(int fd, int nstype):
    _check(setns(fd, nstype))


def set_hostname(name):
    cdef bytes value = _fs(name)
    _check(sethostname(value, len(value)))


def set_domainname(name):
    cdef bytes value = _fs(name)
    _check(setdomainname(value, len(value)))


def prctl(int option, unsigned long arg2=0, unsigned long arg3=0,
          unsigned long arg4=0, unsigned long arg5=0):
    cdef int result = c_prctl(option, arg2, arg3, arg4, arg5)
    _check(result)
    return result


def personality(unsigned long persona):
    _check(c_personality(persona))


def set_rlimit(int resource, unsigned long soft, unsigned long hard):
    cdef rlimit limit
    limit.rlim_cur = soft
    limit.rlim_max = hard
    _check(c_setrlimit(resource, &limit))


def get_capabilities():
    """(effective, permitted, inheritable) of this thread as 64-bit masks."""
    cdef cap_header header
    cdef cap_data data[2]
    header.version = LINUX_CAPABILITY_VERSION_3
    header.pid = 0
    _check(syscall(SYS_capget, &header, data))
    return (
        data[0].effective | (<uint64_t>data[1].effective << 32),
        data[0].permitted | (<uint64_t>data[1].permitted << 32),
        data[0].inheritable | (<uint64_t>data[1].inheritable << 32),
    )


def set_capabilities(uint64_t effective, uint64_t permitted, uint64_t inheritable):
    cdef cap_header header
    cdef cap_data data[2]
    header.version = LINUX_CAPABILITY_VERSION_3
    header.pid = 0
    data[0].effective = effective & 0xffffffff
    data[1].effective = effective >> 32
    data[0].permitted = permitted & 0xffffffff
    data[1].permitted = permitted >> 32
    data[0].inheritable = inheritable & 0xffffffff
    data[1].inheritable = inheritable >> 32
    _check(syscall(SYS_capset, &header, data))


def openat2(int dirfd, path, int flags, uint64_t resolve, unsigned int mode=0):
    """openat2(2): used with RESOLVE_IN_ROOT so symlinks cannot leave the rootfs."""
    cdef open_how how
    memset(&how, 0, sizeof(how))
    how.flags = <uint64_t>flags
    how.mode = mode
    how.resolve = resolve
    cdef bytes b_path = _fs(path)
    cdef long fd = syscall(SYS_openat2, dirfd, <const char *>b_path, &how, sizeof(how))
    _check(fd, path)
    return fd


def mount_setattr(int dirfd, path, unsigned int flags, uint64_t attr_set,
                  uint64_t attr_clr, uint64_t propagation=0):
    """mount_setattr(2): the only way to apply an option to a whole tree (AT_RECURSIVE)."""
    cdef mount_attr attr
    memset(&attr, 0, sizeof(attr))
    attr.attr_set = attr_set
    attr.attr_clr = attr_clr
    attr.propagation = propagation
    cdef bytes b_path = _fs(path)
    _check(syscall(SYS_mount_setattr, dirfd, <const char *>b_path, flags, &attr, sizeof(attr)), path)


def close_range(unsigned int first, unsigned int last, unsigned int flags):
    _check(syscall(SYS_close_range, first, last, flags))


def pidfd_send_signal(int pidfd, int sig):
    _check(syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0))


def set_controlling_terminal(int fd):
    _check(c_ioctl(fd, TIOCSCTTY, 0))


def set_window_size(int fd, unsigned short rows, unsigned short cols):
    cdef winsize size
    memset(&size, 0, sizeof(size))
    size.ws_row = rows
    size.ws_col = cols
    _check(c_ioctl(fd, TIOCSWINSZ, &size))


cdef bytes _fs(value):
    if isinstance(value, bytes):
        return value
    return (<str>value).encode("utf-8", "surrogateescape")


cdef extern from "<sys/ioctl.h>":
    unsigned long TIOCGPTPEER


def open_pty_peer(int master_fd, int flags):
    """The slave side of a pty master without a path lookup (TIOCGPTPEER):
    the master belongs to the container's devpts, which the caller may not see."""
    cdef int fd = c_ioctl(master_fd, TIOCGPTPEER, flags)
    _check(fd)
    return fd


def unlock_pty(int master_fd):
    cdef int unlock = 0
    _check(c_ioctl(master_fd, 0x40045431, &unlock))  # TIOCSPTLCK


cdef extern from "<sys/socket.h>":
    int socket(int domain, int type, int protocol)
    int AF_INET
    int SOCK_DGRAM
    int SOCK_CLOEXEC

cdef extern from "<net/if.h>":
    struct ifreq:
        char *ifr_name
        short ifr_flags
    short IFF_UP
    unsigned long SIOCGIFFLAGS
    unsigned long SIOCSIFFLAGS

cdef extern from "<unistd.h>":
    int close(int fd)


def bring_loopback_up():
    """Set IFF_UP on `lo` of the current network namespace, as runc does for
    a new one (the rest of the network is the engine's business)."""
    cdef ifreq request
    memset(&request, 0, sizeof(request))
    (<char *>&request)[0] = b'l'
    (<char *>&request)[1] = b'o'
    cdef int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    _check(fd)
    try:
        _check(c_ioctl(fd, SIOCGIFFLAGS, &request))
        request.ifr_flags |= IFF_UP
        _check(c_ioctl(fd, SIOCSIFFLAGS, &request))
    finally:
        close(fd)


cdef extern from "<sys/syscall.h>":
    long SYS_keyctl

DEF KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name):
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): a new session keyring named `name`."""
    cdef bytes b_name = _fs(name)
    cdef long serial = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, <const char *>b_name)
    _check(serial)
    return serial


cdef extern from "Python.h":
    void PyOS_BeforeFork()
    void PyOS_AfterFork_Parent()
    void PyOS_AfterFork_Child()

cdef extern from "<sys/syscall.h>":
    long SYS_clone3

cdef struct clone_args:
    uint64_t flags
    uint64_t pidfd
    uint64_t child_tid
    uint64_t parent_tid
    uint64_t exit_signal
    uint64_t stack
    uint64_t stack_size
    uint64_t tls
    uint64_t set_tid
    uint64_t set_tid_size
    uint64_t cgroup

DEF CLONE_INTO_CGROUP = 0x200000000
DEF SIGCHLD = 17


def clone_process(uint64_t flags, int cgroup_fd=-1):
    """os.fork() through clone3(2): the child is born in the namespaces that
    `flags` (CLONE_NEW*) create and, with `cgroup_fd`, in that cgroup2
    directory (CLONE_INTO_CGROUP). Moving a process into a cgroup later takes
    the kernel's global threadgroup lock, whose first writer waits for an RCU
    grace period (several ms); being born there does not, and neither does a
    second fork to enter a new pid namespace. The interpreter is told about
    the fork as os.fork() tells it. Raises OSError (ENOSYS before Linux 5.7)
    with no child made."""
    cdef clone_args args
    memset(&args, 0, sizeof(args))
    args.flags = flags
    if cgroup_fd >= 0:
        args.flags |= CLONE_INTO_CGROUP
        args.cgroup = <uint64_t>cgroup_fd
    args.exit_signal = SIGCHLD
    PyOS_BeforeFork()
    cdef long pid = syscall(SYS_clone3, &args, sizeof(args))
    cdef int saved = errno
    if pid == 0:
        PyOS_AfterFork_Child()
        return 0
    PyOS_AfterFork_Parent()
    if pid < 0:
        _fail(saved, None)
    return pid


# ------------------------------------------------ files, locks, waiting

cdef extern from "<fcntl.h>":
    int openat(int dirfd, const char *path, int flags, ...)
    int fcntl(int fd, int command, ...)
    int O_WRONLY
    int O_RDONLY
    int O_CLOEXEC
    int F_DUPFD_CLOEXEC

cdef extern from "<unistd.h>":
    ssize_t c_write "write"(int fd, const void *buf, size_t count)
    ssize_t c_read "read"(int fd, void *buf, size_t count)

cdef extern from "<sys/file.h>":
    int c_flock "flock"(int fd, int operation)

cdef extern from "<poll.h>":
    struct pollfd:
        int fd
        short events
        short revents
    int c_poll "poll"(pollfd *fds, unsigned long count, int timeout)
    short POLLIN

cdef extern from "<time.h>":
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clock, timespec *now)
    int CLOCK_MONOTONIC

cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1


cdef int _retry(long result) except -1:
    """After a system call: 1 if it was interrupted and should be repeated
    (a Python signal handler has run, and may have raised), else 0."""
    if result < 0 and errno == EINTR:
        PyErr_CheckSignals()
        return 1
    return 0


cdef int _write_one(int dirfd, bytes name, bytes value) except -1:
    cdef int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC)
    cdef ssize_t written
    cdef int code
    _check(fd, name.decode("utf-8", "surrogateescape"))
    while True:
        written = c_write(fd, <const char *>value, len(value))
        if written >= 0 or errno != EINTR:
            break
    code = errno
    close(fd)
    if written < 0:
        _fail(code, name.decode("utf-8", "surrogateescape"))
    return 0


def write_at(int dirfd, name, value):
    """Write `value` to the file `name` under `dirfd` in one write(2), as
    kernel files (cgroupfs, procfs) want: each write is one request."""
    _write_one(dirfd, _fs(name), _fs(value))


def write_all(int dirfd, writes):
    """Write each (name, value) in order; the first failure raises, naming the file."""
    for name, value in writes:
        _write_one(dirfd, _fs(name), _fs(value))


def read_at(int dirfd, name):
    """The whole (small) file `name` under `dirfd`, as str."""
    cdef int fd = openat(dirfd, _fs(name), O_RDONLY | O_CLOEXEC)
    cdef char buffer[16384]
    cdef ssize_t got
    cdef int code
    _check(fd, name)
    chunks = []
    while True:
        got = c_read(fd, buffer, sizeof(buffer))
        if got < 0:
            if errno == EINTR:
                continue
            code = errno
            close(fd)
            _fail(code, name)
        if got == 0:
            break
        chunks.append(buffer[:got])
    close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def flock(int fd, int operation):
    """flock(2); a signal handler that raises interrupts the wait."""
    cdef int result
    while True:
        result = c_flock(fd, operation)
        if not _retry(result):
            break
    _check(result)


def dup_above(int fd, int floor):
    """A close-on-exec duplicate of `fd` numbered `floor` or higher."""
    cdef int new = fcntl(fd, F_DUPFD_CLOEXEC, floor)
    _check(new)
    return new


cdef long _now_ms():
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec // 1000000


def wait_readable(fds, int timeout_ms=-1):
    """poll(2) for POLLIN on up to eight fds: the ones that are readable or
    hung up, in the order given; empty once `timeout_ms` (-1: none) passes."""
    cdef pollfd entries[8]
    cdef unsigned long count = len(fds)
    cdef unsigned long index
    cdef int ready
    cdef long deadline = _now_ms() + timeout_ms if timeout_ms > 0 else 0
    if count > 8:
        raise ValueError("wait_readable takes at most eight fds")
    for index in range(count):
        entries[index].fd = fds[index]
        entries[index].events = POLLIN
        entries[index].revents = 0
    while True:
        ready = c_poll(entries, count, timeout_ms)
        if not _retry(ready):
            break
        if timeout_ms > 0:
            timeout_ms = <int>max(0, deadline - _now_ms())
    _check(ready)
    return [entries[index].fd for index in range(count) if entries[index].revents]


# ------------------------------------------------ unix sockets, fd passing

cdef extern from "<sys/socket.h>":
    ctypedef unsigned int socklen_t
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr *CMSG_FIRSTHDR(msghdr *message)
    unsigned char *CMSG_DATA(cmsghdr *header)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    int socketpair(int domain, int type, int protocol, int *pair)
    int c_connect "connect"(int fd, const void *address, socklen_t length)
    ssize_t sendmsg(int fd, const msghdr *message, int flags)
    ssize_t recvmsg(int fd, msghdr *message, int flags)
    int AF_UNIX
    int SOCK_STREAM
    int SOCK_SEQPACKET
    int SOL_SOCKET
    int SCM_RIGHTS
    int MSG_CMSG_CLOEXEC
    int MSG_NOSIGNAL

cdef extern from "<sys/un.h>":
    struct sockaddr_un:
        unsigned short sun_family
        char sun_path[108]

cdef extern from "<string.h>":
    void *memcpy(void *target, const void *source, size_t count)

DEF RECEIVE_MAX = 65536


def seqpacket_pair():
    """A connected AF_UNIX SOCK_SEQPACKET pair (close-on-exec): each send is
    one message, and end-of-file tells that the peer is gone."""
    cdef int pair[2]
    _check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair))
    return pair[0], pair[1]


def unix_connect(path):
    """A close-on-exec SOCK_STREAM connection to the unix socket at `path`."""
    cdef bytes b_path = _fs(path)
    cdef sockaddr_un address
    cdef int fd, result, code
    if <size_t>len(b_path) >= sizeof(address.sun_path):
        raise OSError(36, "File name too long", path)  # ENAMETOOLONG
    memset(&address, 0, sizeof(address))
    address.sun_family = AF_UNIX
    memcpy(address.sun_path, <const char *>b_path, len(b_path))
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)
    _check(fd)
    while True:
        result = c_connect(fd, &address, sizeof(address))
        if result == 0 or errno != EINTR:
            break
    if result < 0:
        code = errno
        close(fd)
        _fail(code, path)
    return fd


def send_message(int fd, bytes data, int passed_fd=-1):
    """One sendmsg(2) of `data`, carrying `passed_fd` (SCM_RIGHTS) unless -1."""
    cdef msghdr message
    cdef iovec part
    cdef char control[64]
    cdef cmsghdr *header
    cdef ssize_t sent
    memset(&message, 0, sizeof(message))
    part.iov_base = <void *><const char *>data
    part.iov_len = len(data)
    message.msg_iov = &part
    message.msg_iovlen = 1
    if passed_fd >= 0:
        memset(control, 0, sizeof(control))
        message.msg_control = control
        message.msg_controllen = CMSG_SPACE(sizeof(int))
        header = CMSG_FIRSTHDR(&message)
        header.cmsg_level = SOL_SOCKET
        header.cmsg_type = SCM_RIGHTS
        header.cmsg_len = CMSG_LEN(sizeof(int))
        memcpy(CMSG_DATA(header), &passed_fd, sizeof(int))
    while True:
        sent = sendmsg(fd, &message, MSG_NOSIGNAL)
        if not _retry(sent):
            break
    _check(sent)


def receive_message(int fd):
    """One recvmsg(2): (data, the fd it carried or -1); data is b"" at
    end-of-file. A received fd is close-on-exec."""
    cdef msghdr message
    cdef iovec part
    cdef char control[64]
    cdef char buffer[RECEIVE_MAX]
    cdef cmsghdr *header
    cdef ssize_t got
    cdef int passed = -1
    memset(&message, 0, sizeof(message))
    part.iov_base = buffer
    part.iov_len = RECEIVE_MAX
    message.msg_iov = &part
    message.msg_iovlen = 1
    message.msg_control = control
    message.msg_controllen = sizeof(control)
    while True:
        got = recvmsg(fd, &message, MSG_CMSG_CLOEXEC)
        if not _retry(got):
            break
    _check(got)
    header = CMSG_FIRSTHDR(&message)
    if header != NULL and header.cmsg_level == SOL_SOCKET and header.cmsg_type == SCM_RIGHTS \
            and header.cmsg_len >= CMSG_LEN(sizeof(int)):
        memcpy(&passed, CMSG_DATA(header), sizeof(int))
    return buffer[:got], passed
