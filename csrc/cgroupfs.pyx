# cython: language_level=3, boundscheck=False, wraparound=False, binding=False
"""The cgroup manager's system calls: file writes under a cgroup's directory
fd, and the bpf(2) commands of the cgroup v2 device filter.

Like runtime._linux, every failure is an OSError(errno, strerror, filename)
and nothing here decides policy: runtime.cgroups plans what to write.
"""

from libc.errno cimport errno, EINTR
from libc.string cimport memset
from libc.stdint cimport uint32_t, uint64_t
from cpython.mem cimport PyMem_Malloc, PyMem_Free


cdef extern from "<fcntl.h>":
    int openat(int dirfd, const char *path, int flags, ...)
    int O_WRONLY
    int O_RDONLY
    int O_CLOEXEC

cdef extern from "<unistd.h>":
    ssize_t c_write "write"(int fd, const void *buf, size_t count)
    ssize_t c_read "read"(int fd, void *buf, size_t count)
    int c_close "close"(int fd)
    long syscall(long number, ...)

cdef extern from "<sys/syscall.h>":
    long SYS_bpf


cdef object _error(int code, object filename):
    import os
    return OSError(code, os.strerror(code), filename)


cdef bytes _fs(value):
    if isinstance(value, bytes):
        return value
    return (<str>value).encode("utf-8", "surrogateescape")


cdef int _write_one(int dirfd, bytes name, bytes value) except -1:
    cdef int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC)
    cdef int code
    cdef ssize_t written
    if fd < 0:
        raise _error(errno, name.decode("utf-8", "surrogateescape"))
    while True:
        written = c_write(fd, <const char *>value, len(value))
        if written >= 0 or errno != EINTR:
            break
    code = errno
    c_close(fd)
    if written < 0:
        raise _error(code, name.decode("utf-8", "surrogateescape"))
    return 0


def write_at(int dirfd, name, value):
    """Write `value` to the file `name` under `dirfd` in one write(2), as
    cgroupfs wants (each write is one request)."""
    _write_one(dirfd, _fs(name), _fs(value))


def write_all(int dirfd, writes):
    """Write each (name, value) in order; the first failure raises, naming the file."""
    for name, value in writes:
        _write_one(dirfd, _fs(name), _fs(value))


def read_at(int dirfd, name):
    """The whole (small) file `name` under `dirfd`, as str."""
    cdef bytes b_name = _fs(name)
    cdef int fd = openat(dirfd, b_name, O_RDONLY | O_CLOEXEC)
    cdef char buffer[16384]
    cdef ssize_t got
    cdef int code
    if fd < 0:
        raise _error(errno, name)
    chunks = []
    while True:
        got = c_read(fd, buffer, sizeof(buffer))
        if got < 0:
            if errno == EINTR:
                continue
            code = errno
            c_close(fd)
            raise _error(code, name)
        if got == 0:
            break
        chunks.append(buffer[:got])
    c_close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- bpf(2)

DEF BPF_PROG_LOAD = 5
DEF BPF_PROG_ATTACH = 8
DEF BPF_PROG_DETACH = 9
DEF BPF_PROG_GET_FD_BY_ID = 13
DEF BPF_PROG_QUERY = 16
DEF BPF_PROG_TYPE_CGROUP_DEVICE = 15
DEF LOG_SIZE = 65536

BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

cdef struct prog_load_attr:
    uint32_t prog_type
    uint32_t insn_cnt
    uint64_t insns
    uint64_t license
    uint32_t log_level
    uint32_t log_size
    uint64_t log_buf
    uint32_t kern_version
    uint32_t prog_flags
    char prog_name[16]
    uint32_t prog_ifindex
    uint32_t expected_attach_type
    char tail[56]

cdef struct attach_attr:
    uint32_t target_fd
    uint32_t attach_bpf_fd
    uint32_t attach_type
    uint32_t attach_flags
    uint32_t replace_bpf_fd
    char tail[108]

cdef struct query_attr:
    uint32_t target_fd
    uint32_t attach_type
    uint32_t query_flags
    uint32_t attach_flags
    uint64_t prog_ids
    uint32_t prog_cnt
    char tail[100]

cdef struct get_fd_attr:
    uint32_t prog_id
    uint32_t next_id
    uint32_t open_flags
    char tail[116]


def bpf_load_device_program(bytes instructions, license, name=b"rootlet_dev"):
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program (8-byte instructions);
    returns its fd. A rejected program raises OSError with the verifier's log."""
    cdef prog_load_attr attr
    cdef bytes b_license = _fs(license)
    cdef bytes b_name = _fs(name)[:15]
    cdef char *log = NULL
    cdef bytes raw
    cdef long fd
    memset(&attr, 0, sizeof(attr))
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE
    attr.insn_cnt = len(instructions) // 8
    attr.insns = <uint64_t><const char *>instructions
    attr.license = <uint64_t><const char *>b_license
    for index in range(len(b_name)):
        attr.prog_name[index] = b_name[index]
    fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr))
    if fd >= 0:
        return fd
    code = errno
    if code != 22:  # only EINVAL can come with a verifier log worth reading
        raise _error(code, "bpf(BPF_PROG_LOAD)")
    log = <char *>PyMem_Malloc(LOG_SIZE)
    if log == NULL:
        raise MemoryError()
    try:
        memset(log, 0, LOG_SIZE)
        attr.log_level = 1
        attr.log_size = LOG_SIZE
        attr.log_buf = <uint64_t>log
        fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr))
        if fd >= 0:
            return fd
        code = errno
        raw = log
        text = raw.decode("utf-8", "replace").strip()
    finally:
        PyMem_Free(log)
    import os
    raise OSError(code, f"{os.strerror(code)} (verifier: {text[-400:]})", "bpf(BPF_PROG_LOAD)")


def bpf_attach(int prog_fd, int cgroup_fd, uint32_t attach_type, uint32_t flags):
    cdef attach_attr attr
    memset(&attr, 0, sizeof(attr))
    attr.target_fd = cgroup_fd
    attr.attach_bpf_fd = prog_fd
    attr.attach_type = attach_type
    attr.attach_flags = flags
    if syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) < 0:
        raise _error(errno, "bpf(BPF_PROG_ATTACH)")


def bpf_detach(int prog_fd, int cgroup_fd, uint32_t attach_type):
    cdef attach_attr attr
    memset(&attr, 0, sizeof(attr))
    attr.target_fd = cgroup_fd
    attr.attach_bpf_fd = prog_fd
    attr.attach_type = attach_type
    if syscall(SYS_bpf, BPF_PROG_DETACH, &attr, sizeof(attr)) < 0:
        raise _error(errno, "bpf(BPF_PROG_DETACH)")


def bpf_query(int cgroup_fd, uint32_t attach_type):
    """Ids of the programs attached directly to the cgroup for `attach_type`."""
    cdef query_attr attr
    cdef uint32_t ids[64]
    memset(&attr, 0, sizeof(attr))
    attr.target_fd = cgroup_fd
    attr.attach_type = attach_type
    attr.prog_ids = <uint64_t>ids
    attr.prog_cnt = 64
    if syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)) < 0:
        raise _error(errno, "bpf(BPF_PROG_QUERY)")
    return [ids[index] for index in range(min(attr.prog_cnt, 64))]


def bpf_program_fd(uint32_t prog_id):
    cdef get_fd_attr attr
    memset(&attr, 0, sizeof(attr))
    attr.prog_id = prog_id
    cdef long fd = syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &attr, sizeof(attr))
    if fd < 0:
        raise _error(errno, "bpf(BPF_PROG_GET_FD_BY_ID)")
    return fd
