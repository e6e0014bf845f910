"""The narrow layer between rootlet and the kernel: constants and thin
wrappers over the Cython extension `runtime._linux` that turn OSError into
RootletError naming the step."""
