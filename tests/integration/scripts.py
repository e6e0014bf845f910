"""Shell snippets run inside containers (busybox sh)."""

# Signal readiness through the shared /out dir, then idle until the host
# creates /out/stop. Short sleeps so that traps run promptly.
WAIT_FOR_STOP = (
    "touch /out/started; "
    "while [ ! -e /out/stop ]; do sleep 0.02; done"
)

# Idle forever in short steps (traps stay responsive).
IDLE = "touch /out/started; while :; do sleep 0.02; done"
