"""W5 through other peers' Ray paths that run locally: dask on Ray, joblib's Ray backend."""

from common import N_W5, RAY_CPUS, REPEAT, emit, expected_w2, mode_arg, perf

mode = mode_arg("joblib")  # dask | joblib
t = perf()
import ray  # noqa: E402

if mode == "dask":
    import dask  # noqa: F401
    from dask import delayed
    from ray.util.dask import ray_dask_get
else:
    import joblib
    from ray.util.joblib import register_ray
emit("ray", "w5", "import", perf() - t, mode=mode)


def square(x: int) -> int:
    return x * x


t = perf()
ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)
emit("ray", "w5", "ray_init", perf() - t, mode=mode)
if mode == "joblib":
    register_ray()
for rep in range(max(REPEAT, 2)):
    t = perf()
    if mode == "dask":
        g = delayed(sum)([delayed(square, pure=False)(i) for i in range(N_W5)])
        r = g.compute(scheduler=ray_dask_get)
    else:
        with joblib.parallel_backend("ray"):
            r = sum(joblib.Parallel(n_jobs=2)(joblib.delayed(square)(i) for i in range(N_W5)))
    dt = perf() - t
    assert r == expected_w2(N_W5)
    emit("ray", "w5", "run", dt, mode=mode, rep=rep, n=N_W5)
ray.shutdown()
