# cython: language_level=3, boundscheck=False, wraparound=False, binding=False
"""bpf(2) commands of the cgroup v2 device filter: load the program that
runtime.cgroups.bpf assembles, attach it, find and detach older ones.

Like runtime._linux, every failure is an OSError(errno, strerror) and
nothing here decides policy. Only cgroup v2 with device rules loads this
module; the file writes of every cgroup are runtime._linux's.
"""

from libc.errno cimport errno
from libc.string cimport memset
from libc.stdint cimport uint32_t, uint64_t
from cpython.mem cimport PyMem_Malloc, PyMem_Free


cdef extern from "<unistd.h>":
    long syscall(long number, ...)

cdef extern from "<sys/syscall.h>":
    long SYS_bpf


cdef object _error(int code, object filename):
    import os
    return OSError(code, os.strerror(code), filename)


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


def bpf_load_device_program(bytes instructions, bytes license, bytes name=b"rootlet_dev"):
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program (8-byte instructions);
    returns its fd. A rejected program raises OSError with the verifier's log."""
    cdef prog_load_attr attr
    cdef bytes b_name = name[:15]
    cdef char *log = NULL
    cdef bytes raw
    cdef long fd
    memset(&attr, 0, sizeof(attr))
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE
    attr.insn_cnt = len(instructions) // 8
    attr.insns = <uint64_t><const char *>instructions
    attr.license = <uint64_t><const char *>license
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
