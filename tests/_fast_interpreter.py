"""Two speed-ups of Triton's interpreter, installed by conftest.py for the tests. Neither changes a
result; neither touches a GPU run, where the interpreter is not used.

1. Device-function calls. The interpreter re-patches ``triton.language`` (an ``inspect.getmembers``
   walk, about 2 ms) on every call of a ``@triton.jit`` helper from a kernel, although the kernel's
   launch has already patched the same module objects. The single-pass kernels call small helpers a
   few thousand times per launch; skipping the redundant patch makes them ~5x faster to test.
2. ``tl.associative_scan``. The interpreter folds a scan one element at a time, calling the combine function on scalars (about
0.15 ms per element for a 2-tuple, several ms for the 20-tuple affine maps of the single-pass
kernels). This version walks the scanned axis in the same sequential order but combines whole slices
(every other axis at once), so results are bitwise the same and a [rows, T] scan costs T calls, not
rows * T.
"""
import numpy as np


def install() -> None:
    from triton.runtime import interpreter

    def generic_scan(self, input):
        data = [arg.handle.data for arg in input]
        out = [np.empty_like(d) for d in data]
        ndim = data[0].ndim

        def at(k):
            return tuple(k if i == self.axis else slice(None) for i in range(ndim))

        acc = None
        for k in range(data[0].shape[self.axis]):
            cur = tuple(self.to_tensor(d[at(k)], arg.dtype) for d, arg in zip(data, input))
            if acc is None:
                acc = cur
            else:
                ret = self.combine_fn.fn(*acc, *cur)
                acc = ret if isinstance(ret, tuple) else (ret,)
            for o, v in zip(out, acc):
                # a scalar slice comes back as a 1-element array
                o[at(k)] = np.reshape(v.handle.data if hasattr(v, "handle") else v, o[at(k)].shape)
        return [self.to_tensor(o, arg.dtype) for o, arg in zip(out, input)]

    interpreter.ScanOps.generic_scan = generic_scan

    tl = interpreter.tl
    original_patch_lang = interpreter._patch_lang

    class _Both:  # stands for a function whose globals hold triton.language and its core
        __globals__ = {"tl": tl, "core": tl.core}

    def patch_lang_for_launch(fn):
        # A launch patches triton.language and triton.language.core at once (a helper from
        # triton.language.standard needs core), so no helper call has anything left to patch.
        return original_patch_lang(_Both)

    interpreter._patch_lang = patch_lang_for_launch

    def call_device_function(self, *args, **kwargs):
        # as InterpretedFunction.__call__, minus the _patch_lang that the launch already did
        fn = self.rewrite()
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise interpreter.InterpreterError(repr(e)) from e

    interpreter.InterpretedFunction.__call__ = call_device_function
