"""The cgroup v2 device filter: device rules assembled into a
BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup v2 has no devices.allow file).

The kernel calls the program with r1 pointing at
struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, where
access_type = (access << 16) | type; a return of 1 allows the access, 0
denies it. Rules are checked from the last to the first, as a later rule
overrides an earlier one. Each requested access bit (mknod, read, write) is
decided by the last rule that matches the device and names the bit: an
allowing rule clears the bits it names from the pending set (all cleared:
allow), a denying rule that names a pending bit denies. Bits no rule names
are allowed, like the v1 controller's default.
"""

from __future__ import annotations

# struct bpf_insn opcodes (linux/bpf.h, linux/bpf_common.h)
_LDX_W = 0x61       # BPF_LDX | BPF_MEM | BPF_W
_AND_K = 0x57       # BPF_ALU64 | BPF_AND | BPF_K
_RSH_K = 0x77       # BPF_ALU64 | BPF_RSH | BPF_K
_MOV_K = 0xB7       # BPF_ALU64 | BPF_MOV | BPF_K
_JA = 0x05          # BPF_JMP | BPF_JA
_JNE_K = 0x55       # BPF_JMP | BPF_JNE | BPF_K
_JSET_K = 0x45      # BPF_JMP | BPF_JSET | BPF_K
_EXIT = 0x95        # BPF_JMP | BPF_EXIT

DEVICE_TYPES = {"b": 1, "c": 2}          # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}   # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
LICENSE = b"Apache-2.0"

# registers: r2 device type, r3 pending access bits, r4 major, r5 minor
_PROLOGUE = (
    (_LDX_W, 2, 1, 0, 0), (_AND_K, 2, 0, 0, 0xFFFF),
    (_LDX_W, 3, 1, 0, 0), (_RSH_K, 3, 0, 0, 16),
    (_LDX_W, 4, 1, 4, 0), (_LDX_W, 5, 1, 8, 0),
)


def instruction(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return bytes((code, (src << 4) | dst)) + off.to_bytes(2, "little", signed=True) + \
        imm.to_bytes(4, "little", signed=True)


def needed(rules: list[tuple]) -> bool:
    """A filter is needed only when some rule denies something."""
    return any(not allow for allow, *_ in rules)


def assemble(rules: list[tuple]) -> bytes:
    """The program for [(allow, type "a"|"b"|"c", major|None, minor|None, access "rwm")]."""
    program = list(_PROLOGUE)
    for allow, kind, major, minor, access in reversed(rules):
        mask = sum(ACCESS_BITS[c] for c in access)
        checks = []
        if kind != "a":
            checks.append((2, DEVICE_TYPES[kind]))
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        if allow:
            body = [(_AND_K, 3, 0, 0, ~mask & 7), (_JNE_K, 3, 0, 2, 0),
                    (_MOV_K, 0, 0, 0, 1), (_EXIT, 0, 0, 0, 0)]
        else:
            body = [(_JSET_K, 3, 0, 1, mask), (_JA, 0, 0, 2, 0), (_MOV_K, 0, 0, 0, 0), (_EXIT, 0, 0, 0, 0)]
        for index, (register, value) in enumerate(checks):
            program.append((_JNE_K, register, 0, len(checks) - index - 1 + len(body), value))
        program.extend(body)
        if not checks and mask == 7:
            break  # decides every access: the earlier rules are never reached
    program.append((_MOV_K, 0, 0, 0, 1))
    program.append((_EXIT, 0, 0, 0, 0))
    return b"".join(instruction(*insn) for insn in program)


def evaluate(rules: list[tuple], kind: str, major: int, minor: int, access: str) -> bool:
    """What the program decides, computed directly (for tests of assemble)."""
    pending = sum(ACCESS_BITS[c] for c in access)
    for allow, rule_kind, rule_major, rule_minor, rule_access in reversed(rules):
        if rule_kind not in ("a", kind) or rule_major not in (None, major) or rule_minor not in (None, minor):
            continue
        mask = sum(ACCESS_BITS[c] for c in rule_access)
        if allow:
            pending &= ~mask
            if not pending:
                return True
        elif pending & mask:
            return False
    return True
