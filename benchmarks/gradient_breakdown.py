"""What a gradient step costs beyond a forward step: Devito kernels alone, one core, float32.

    OMP_NUM_THREADS=1 DEVITO_LANGUAGE=C python -m benchmarks.gradient_breakdown

On padded grids of 104² and 296² (64² and 256² models with 20-point layers), nt = 1017, the minimum CPU time
of 3 runs of: the leapfrog stencil alone (``stencil``: the forward's and the adjoint's work); the stencil with
the gradient accumulation in the same loop, by parts (one saved level) and direct (three); the accumulation
alone reading the saved field (``grad_only``) or an in-cache array instead (``grad_only_nosave``); the stencil
writing into the saved field (``fwd_save``). Prints milliseconds per run.
"""

import time

import numpy as np
from devito import Eq, Function, Grid, Operator, TimeFunction


def main() -> None:
    for n in (104, 296):
        grid = Grid(shape=(n, n), extent=(10.0 * (n - 1),) * 2, dtype=np.float32)
        so, nt = 8, 1017
        g = Function(name="g", grid=grid, space_order=so)
        c = Function(name="c", grid=grid, space_order=so)
        lam = TimeFunction(name="lam", grid=grid, time_order=2, space_order=so)
        us = TimeFunction(name="us", grid=grid, time_order=2, space_order=so, save=nt + 1)
        grad = Function(name="grad", grid=grid, space_order=so)
        g.data[:], c.data[:], us.data[:] = 1.0, 0.1, 0.01
        st = Eq(lam.backward, 2 * g * (lam - lam.forward) + lam.forward + c * lam.laplace)
        bp = Eq(grad, grad - us.forward * (lam - 2 * lam.forward + lam.backward))
        ops = {
            "stencil": Operator([st]),
            "stencil+grad_by_parts": Operator([bp, st]),
            "stencil+grad_direct": Operator([st, Eq(grad, grad - (us.forward - 2 * us + us.backward) * lam)]),
            "grad_only": Operator([bp]),
            "grad_only_nosave": Operator([Eq(grad, grad - g * (lam - 2 * lam.forward + lam.backward))]),
            "fwd_save": Operator([Eq(us.forward, 2 * g * (us - us.backward) + us.backward + c * us.laplace)]),
        }
        best = {}
        for _ in range(3):
            for k, op in ops.items():
                t = time.process_time()
                op.apply(time_m=1, time_M=nt - 1, dt=np.float32(1.0))
                best[k] = min(best.get(k, np.inf), time.process_time() - t)
        print(f"{n}² padded:", ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in best.items()), flush=True)


if __name__ == "__main__":
    main()
