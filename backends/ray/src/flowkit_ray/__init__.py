"""flowkit-ray: run flowkit workflows on a Ray cluster.

    import flowkit as fk
    from flowkit_ray import RayBackend

    fk.run(pipeline, backend="ray")                                  # local Ray / RAY_ADDRESS
    fk.run(pipeline, backend=RayBackend(address="ray://head:10001"), store="s3://bucket/fk")

See docs/ray.md for connecting, resources, where the store must live and shipping code.
"""

from flowkit_ray.backend import RayBackend
from flowkit_ray.errors import RayBackendError, RayConnectionError
from flowkit_ray.storecheck import StoreReachabilityWarning

__all__ = ["RayBackend", "RayBackendError", "RayConnectionError", "StoreReachabilityWarning"]
