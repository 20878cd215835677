"""Case 5: one component of the linearized posterior, matrix-free against dense, against the Lanczos rank.

Component ``n``: ``Σ_n = (σ⁻² I + γ⁻² J_nᵀJ_n)⁻¹``, ``μ_n = x_n + γ⁻² Σ_n J_nᵀ r_n``, evidence with the
log-determinant. Matrix-free (:class:`~geomem.posterior.matrix_free.MatrixFreeLinearizedPosterior`): CG for
the mean and ``rank`` Lanczos eigenpairs of ``JᵀJ`` for the log-determinant, with Born and adjoint-Born
actions only. Dense (:meth:`~geomem.posterior.linearized.LinearizedPosterior.from_likelihood`): the full
Jacobian column by column (``d`` Born actions), then dense linear algebra; only where ``J`` (``m × d``
float64) fits ``dense_budget_mib``.

PDE solves are counted per shot: a Born action solves the background and the scattered field of every shot
(fused, one operator run per shot), an adjoint-Born action a forward with save and an adjoint run per shot.
Models in velocity (km/s), no parameterization; short records (300 ms) keep the dense Jacobian small.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import summarize

FULL = {"sizes": [16, 24], "ranks": [2, 5, 10, 20], "t_max": 300.0, "repeats": 1, "dense_budget_mib": 256,
        "cg_maxiter": 200}
QUICK = {"sizes": [8], "ranks": [2], "t_max": 100.0, "repeats": 1, "dense_budget_mib": 64, "cg_maxiter": 5}
SIGMA, GAMMA = 0.05, 0.05


def _problem(n: int, t_max: float):
    from benchmarks.case_devito import velocity
    from geomem.physics.acoustic import AcousticOperator
    from geomem.physics.acquisition import Geometry

    op = AcousticOperator((n, n), 10.0, Geometry.surface((n, n), 10.0, t_max=t_max), dtype=np.float64)
    truth = velocity(n)
    rng = np.random.default_rng(0)
    train = np.clip(truth * (1 + 0.03 * rng.standard_normal((1, *truth.shape))), 1.5, 4.4)
    y = op.forward(truth)
    return op, train, y


def run(quick: bool) -> dict:
    from geomem.posterior.likelihood import Likelihood
    from geomem.posterior.linearized import LinearizedPosterior
    from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior

    cfg = QUICK if quick else FULL
    rows = []
    for n in cfg["sizes"]:
        op, train, y = _problem(n, cfg["t_max"])
        lik = Likelihood(op, y, GAMMA)
        n_shots, d = op.geometry.n_src, int(np.prod(op.model_shape))
        for rank in cfg["ranks"]:
            times, post = [], None
            for _ in range(cfg["repeats"]):
                t = time.perf_counter()
                post = MatrixFreeLinearizedPosterior.fit(lik, train, SIGMA, rank=rank, cg_maxiter=cfg["cg_maxiter"])
                times.append(time.perf_counter() - t)
            st = post.stats
            rows.append({"method": "matrix-free", "size": n, "d": d, "data_size": int(y.size), "rank": rank,
                         "time": summarize(times), "born_actions": st["born_actions"],
                         "adjoint_actions": st["adjoint_actions"], "cg_iterations": st["cg_iterations"][0],
                         "pde_solves": n_shots * (2 * st["born_actions"] + 2 * st["adjoint_actions"]),
                         "log_evidence": post.components[0].log_evidence})
        dense_mib = y.size * d * 8 / 2**20
        if dense_mib <= cfg["dense_budget_mib"]:
            t = time.perf_counter()
            dense = LinearizedPosterior.from_likelihood(lik, train, SIGMA)
            elapsed = time.perf_counter() - t
            mf = MatrixFreeLinearizedPosterior.fit(lik, train, SIGMA, rank=max(cfg["ranks"]),
                                                   cg_maxiter=cfg["cg_maxiter"])
            rows.append({"method": "dense", "size": n, "d": d, "data_size": int(y.size), "rank": d,
                         "time": summarize([elapsed]), "born_actions": d, "adjoint_actions": 0,
                         "pde_solves": n_shots * (2 * d + 1), "jacobian_mib": dense_mib,
                         "log_evidence": float(dense.quads[0] * -0.5 - 0.5 * dense.logdets[0]
                                               - 0.5 * y.size * np.log(2 * np.pi)),
                         "mean_relative_difference_to_matrix_free":
                             float(np.linalg.norm(dense.means[0] - mf.components[0].mean)
                                   / np.linalg.norm(dense.means[0]))})
        else:
            rows.append({"method": "dense", "size": n, "d": d, "skipped": f"J needs {dense_mib:.0f} MiB > budget "
                                                                         f"{cfg['dense_budget_mib']} MiB"})
    return {"config": cfg, "sigma": SIGMA, "gamma": GAMMA, "rows": rows}


def table(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        if "skipped" in r:
            out.append([f"linearized {r['method']}", f"{r['size']}² d={r['d']}", r["skipped"], "", "", ""])
            continue
        extra = (f"mean rel diff {r['mean_relative_difference_to_matrix_free']:.1e}"
                 if "mean_relative_difference_to_matrix_free" in r else f"CG its {r.get('cg_iterations')}")
        out.append([f"linearized {r['method']}", f"{r['size']}² d={r['d']} rank={r['rank']}",
                    f"{r['time']['median']:.3g} s/component", f"{r['pde_solves']} PDE solves",
                    f"log ev {r['log_evidence']:.6g}", extra])
    return out
