# cython: language_level=3, boundscheck=False, wraparound=False, binding=False
"""A thin binding to libseccomp: build a filter, load it, hand out its notify fd.

runtime.seccomp plans (validates the OCI section, resolves names, splits
rules); this module only turns a plan into libseccomp calls. A whole rule
list goes through one call (Filter.add_rules), so a few hundred rules cost
one Python-to-C crossing, not hundreds. Failures raise OSError with
libseccomp's (raw, negative) return code turned into an errno.
"""

from libc.errno cimport errno
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset


cdef extern from "<seccomp.h>":
    ctypedef void *scmp_filter_ctx
    ctypedef uint64_t scmp_datum_t

    cdef enum scmp_compare:
        SCMP_CMP_NE
        SCMP_CMP_LT
        SCMP_CMP_LE
        SCMP_CMP_EQ
        SCMP_CMP_GE
        SCMP_CMP_GT
        SCMP_CMP_MASKED_EQ

    cdef enum scmp_filter_attr:
        SCMP_FLTATR_CTL_NNP
        SCMP_FLTATR_CTL_TSYNC
        SCMP_FLTATR_CTL_LOG
        SCMP_FLTATR_CTL_SSB
        SCMP_FLTATR_CTL_OPTIMIZE
        SCMP_FLTATR_API_SYSRAWRC

    struct scmp_arg_cmp:
        unsigned int arg
        scmp_compare op
        scmp_datum_t datum_a
        scmp_datum_t datum_b

    struct scmp_version:
        unsigned int major
        unsigned int minor
        unsigned int micro

    int __NR_SCMP_ERROR
    uint32_t SCMP_ACT_KILL_PROCESS
    uint32_t SCMP_ACT_KILL_THREAD
    uint32_t SCMP_ACT_TRAP
    uint32_t SCMP_ACT_NOTIFY
    uint32_t SCMP_ACT_LOG
    uint32_t SCMP_ACT_ALLOW
    uint32_t SCMP_ACT_ERRNO(uint32_t code)
    uint32_t SCMP_ACT_TRACE(uint32_t code)

    const scmp_version *seccomp_version()
    unsigned int seccomp_api_get()
    scmp_filter_ctx seccomp_init(uint32_t def_action)
    void seccomp_release(scmp_filter_ctx ctx)
    uint32_t seccomp_arch_native()
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token)
    int seccomp_attr_set(scmp_filter_ctx ctx, scmp_filter_attr attr, uint32_t value)
    int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const scmp_arg_cmp *arg_array)
    int seccomp_load(const scmp_filter_ctx ctx)
    int seccomp_notify_fd(const scmp_filter_ctx ctx)
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd)


# What this libseccomp knows beyond 2.5: arches and the WAITKILL attribute
# (2.6) are compiled in only when its header has them; 0 / -1 mean "absent".
cdef extern from *:
    """
    #include <seccomp.h>
    #ifdef SCMP_ARCH_LOONGARCH64
    #define ROOTLET_ARCH_LOONGARCH64 SCMP_ARCH_LOONGARCH64
    #else
    #define ROOTLET_ARCH_LOONGARCH64 0
    #endif
    #ifdef SCMP_ARCH_M68K
    #define ROOTLET_ARCH_M68K SCMP_ARCH_M68K
    #else
    #define ROOTLET_ARCH_M68K 0
    #endif
    #ifdef SCMP_ARCH_SH
    #define ROOTLET_ARCH_SH SCMP_ARCH_SH
    #define ROOTLET_ARCH_SHEB SCMP_ARCH_SHEB
    #else
    #define ROOTLET_ARCH_SH 0
    #define ROOTLET_ARCH_SHEB 0
    #endif
    #if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
    #define ROOTLET_FLTATR_WAITKILL ((int)SCMP_FLTATR_CTL_WAITKILL)
    #else
    #define ROOTLET_FLTATR_WAITKILL (-1)
    #endif
    """
    uint32_t ROOTLET_ARCH_LOONGARCH64
    uint32_t ROOTLET_ARCH_M68K
    uint32_t ROOTLET_ARCH_SH
    uint32_t ROOTLET_ARCH_SHEB
    int ROOTLET_FLTATR_WAITKILL
    uint32_t SCMP_ARCH_X86
    uint32_t SCMP_ARCH_X86_64
    uint32_t SCMP_ARCH_X32
    uint32_t SCMP_ARCH_ARM
    uint32_t SCMP_ARCH_AARCH64
    uint32_t SCMP_ARCH_MIPS
    uint32_t SCMP_ARCH_MIPS64
    uint32_t SCMP_ARCH_MIPS64N32
    uint32_t SCMP_ARCH_MIPSEL
    uint32_t SCMP_ARCH_MIPSEL64
    uint32_t SCMP_ARCH_MIPSEL64N32
    uint32_t SCMP_ARCH_PPC
    uint32_t SCMP_ARCH_PPC64
    uint32_t SCMP_ARCH_PPC64LE
    uint32_t SCMP_ARCH_S390
    uint32_t SCMP_ARCH_S390X
    uint32_t SCMP_ARCH_PARISC
    uint32_t SCMP_ARCH_PARISC64
    uint32_t SCMP_ARCH_RISCV64


cdef extern from "<unistd.h>":
    int close(int fd)
    long syscall(long number, ...)

cdef extern from "<sys/syscall.h>":
    long SYS_seccomp

cdef extern from "<linux/filter.h>":
    struct sock_filter:
        pass
    struct sock_fprog:
        unsigned short len
        sock_filter *filter

cdef extern from "<sys/mman.h>":
    int memfd_create(const char *name, unsigned int flags)
    unsigned int MFD_CLOEXEC


# ---------------------------------------------------------------- constants

ACT_KILL_PROCESS = SCMP_ACT_KILL_PROCESS
ACT_KILL_THREAD = SCMP_ACT_KILL_THREAD
ACT_TRAP = SCMP_ACT_TRAP
ACT_NOTIFY = SCMP_ACT_NOTIFY
ACT_LOG = SCMP_ACT_LOG
ACT_ALLOW = SCMP_ACT_ALLOW
ACT_ERRNO = SCMP_ACT_ERRNO(0)
ACT_TRACE = SCMP_ACT_TRACE(0)

OPERATORS = {
    "SCMP_CMP_NE": SCMP_CMP_NE, "SCMP_CMP_LT": SCMP_CMP_LT, "SCMP_CMP_LE": SCMP_CMP_LE,
    "SCMP_CMP_EQ": SCMP_CMP_EQ, "SCMP_CMP_GE": SCMP_CMP_GE, "SCMP_CMP_GT": SCMP_CMP_GT,
    "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ,
}

ATTR_NNP = SCMP_FLTATR_CTL_NNP
ATTR_TSYNC = SCMP_FLTATR_CTL_TSYNC
ATTR_LOG = SCMP_FLTATR_CTL_LOG
ATTR_SSB = SCMP_FLTATR_CTL_SSB
ATTR_OPTIMIZE = SCMP_FLTATR_CTL_OPTIMIZE
ATTR_SYSRAWRC = SCMP_FLTATR_API_SYSRAWRC
ATTR_WAITKILL = ROOTLET_FLTATR_WAITKILL  # -1: this libseccomp predates 2.6

NR_ERROR = __NR_SCMP_ERROR

# seccomp(2)'s filter flags (kernel ABI, linux/seccomp.h)
FLAG_TSYNC = 1 << 0
FLAG_LOG = 1 << 1
FLAG_SPEC_ALLOW = 1 << 2
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
FLAG_WAIT_KILLABLE_RECV = 1 << 5
DEF SECCOMP_SET_MODE_FILTER = 1
DEF BPF_MAXINSNS = 4096

# The architectures this libseccomp was built with, by their OCI names.
ARCHES = {name: token for name, token in {
    "SCMP_ARCH_X86": SCMP_ARCH_X86, "SCMP_ARCH_X86_64": SCMP_ARCH_X86_64, "SCMP_ARCH_X32": SCMP_ARCH_X32,
    "SCMP_ARCH_ARM": SCMP_ARCH_ARM, "SCMP_ARCH_AARCH64": SCMP_ARCH_AARCH64,
    "SCMP_ARCH_MIPS": SCMP_ARCH_MIPS, "SCMP_ARCH_MIPS64": SCMP_ARCH_MIPS64,
    "SCMP_ARCH_MIPS64N32": SCMP_ARCH_MIPS64N32, "SCMP_ARCH_MIPSEL": SCMP_ARCH_MIPSEL,
    "SCMP_ARCH_MIPSEL64": SCMP_ARCH_MIPSEL64, "SCMP_ARCH_MIPSEL64N32": SCMP_ARCH_MIPSEL64N32,
    "SCMP_ARCH_PPC": SCMP_ARCH_PPC, "SCMP_ARCH_PPC64": SCMP_ARCH_PPC64, "SCMP_ARCH_PPC64LE": SCMP_ARCH_PPC64LE,
    "SCMP_ARCH_S390": SCMP_ARCH_S390, "SCMP_ARCH_S390X": SCMP_ARCH_S390X,
    "SCMP_ARCH_PARISC": SCMP_ARCH_PARISC, "SCMP_ARCH_PARISC64": SCMP_ARCH_PARISC64,
    "SCMP_ARCH_RISCV64": SCMP_ARCH_RISCV64, "SCMP_ARCH_LOONGARCH64": ROOTLET_ARCH_LOONGARCH64,
    "SCMP_ARCH_M68K": ROOTLET_ARCH_M68K, "SCMP_ARCH_SH": ROOTLET_ARCH_SH, "SCMP_ARCH_SHEB": ROOTLET_ARCH_SHEB,
}.items() if token}


def version():
    """libseccomp's (major, minor, micro), of the library loaded at run time."""
    cdef const scmp_version *v = seccomp_version()
    return (v.major, v.minor, v.micro)


def api_level():
    """seccomp_api_get(): what the running kernel and this libseccomp support
    together (probed once per process, then cached by libseccomp)."""
    return seccomp_api_get()


def native_arch():
    return seccomp_arch_native()


def resolve(name, uint32_t arch=0):
    """The number of syscall `name` on `arch` (0: native). A syscall that
    libseccomp knows but `arch` lacks gives a negative pseudo number, which
    rules accept (they then apply on the arches that have it); NR_ERROR
    means libseccomp does not know the name at all."""
    cdef bytes raw = name.encode() if isinstance(name, str) else name
    return seccomp_syscall_resolve_name_arch(arch, raw)


cdef inline int _check(int rc, what) except -1:
    if rc < 0:
        import os
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")
    return 0


cdef class Filter:
    """One libseccomp filter context; released when the object goes."""

    cdef scmp_filter_ctx ctx

    def __cinit__(self, uint32_t default_action):
        self.ctx = seccomp_init(default_action)
        if self.ctx == NULL:
            raise OSError(22, "seccomp_init: invalid default action")
        # The runtime sets no_new_privs itself (process.noNewPrivileges), and
        # wants the kernel's errno, not libseccomp's -ECANCELED.
        _check(seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set(NNP)")
        seccomp_attr_set(self.ctx, SCMP_FLTATR_API_SYSRAWRC, 1)

    def __dealloc__(self):
        if self.ctx != NULL:
            seccomp_release(self.ctx)
            self.ctx = NULL

    def add_arch(self, uint32_t token):
        """Add an architecture; the native one is already there (not an error)."""
        cdef int rc = seccomp_arch_add(self.ctx, token)
        if rc != -17:  # EEXIST
            _check(rc, "seccomp_arch_add")

    def set_attr(self, int attr, uint32_t value):
        _check(seccomp_attr_set(self.ctx, <scmp_filter_attr>attr, value), "seccomp_attr_set")

    def add_rules(self, list rules):
        """Add rules given as (syscall_nr, action, conditions), conditions a
        tuple of up to six (arg, op, datum_a, datum_b). On failure raises
        OSError with the index of the rule as its `filename`."""
        cdef scmp_arg_cmp cmps[6]
        cdef Py_ssize_t index
        cdef unsigned int count, i
        cdef int rc
        cdef tuple rule, conds, cond
        for index in range(len(rules)):
            rule = <tuple>rules[index]
            conds = <tuple>rule[2]
            count = len(conds)
            if count > 6:
                raise OSError(22, "more than 6 argument comparisons", index)
            memset(cmps, 0, sizeof(cmps))
            for i in range(count):
                cond = <tuple>conds[i]
                cmps[i].arg = cond[0]
                cmps[i].op = <scmp_compare>(<int>cond[1])
                cmps[i].datum_a = cond[2]
                cmps[i].datum_b = cond[3]
            rc = seccomp_rule_add_array(self.ctx, <uint32_t>rule[1], <int>rule[0], count, cmps)
            if rc < 0:
                import os
                raise OSError(-rc, os.strerror(-rc), index)

    def load(self):
        """Generate the BPF program and install it in the calling thread
        (all threads with the TSYNC attribute)."""
        _check(seccomp_load(self.ctx), "seccomp_load")

    def notify_fd(self):
        """The notification fd of the loaded filter; -1 if it has no NOTIFY rule."""
        cdef int fd = seccomp_notify_fd(self.ctx)
        return fd if fd >= 0 else -1

    def export_bpf(self):
        """The BPF program as bytes (for tests and for measuring its size)."""
        import os
        cdef int fd = memfd_create(b"seccomp-bpf", MFD_CLOEXEC)
        if fd < 0:
            raise OSError(errno, f"memfd_create: {os.strerror(errno)}")
        try:
            _check(seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, 1)
            return os.pread(fd, size, 0)
        finally:
            close(fd)


# ---------------------------------------------------------------- direct loading

def flag_supported(unsigned int flags):
    """Whether the running kernel accepts these seccomp(2) filter flags: asked
    with a NULL program, which a kernel that knows them answers with EFAULT."""
    cdef long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL)
    return rc < 0 and errno == 14  # EFAULT


def load_program(bytes program, unsigned int flags):
    """Install a BPF program (as Filter.export_bpf gives it) with seccomp(2)
    and `flags`; returns the notify fd with FLAG_NEW_LISTENER, else 0.
    What seccomp_load() does after generating the program, minus the
    generation, so that a program built once can be loaded many times."""
    import os
    cdef sock_fprog prog
    cdef Py_ssize_t size = len(program)
    if size == 0 or size % 8 or size // 8 > BPF_MAXINSNS:
        raise OSError(22, f"seccomp: not a BPF program ({size} bytes)")
    prog.len = <unsigned short>(size // 8)
    prog.filter = <sock_filter *><const char *>program
    cdef long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog)
    if rc < 0:
        code = errno
        raise OSError(code, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(code)}")
    return rc
