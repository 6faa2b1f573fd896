"""Ray for `zoo tune` and `zoo predict --ray`: started in this process, or joined at a cluster's address,
with every way of failing to join it said in one line, within seconds.

A cluster's address is its head's GCS, HOST:6379 (from a node of the cluster), or its Ray Client server,
ray://HOST:10001 (from anywhere; it needs `ray[client]` on both ends). Since Ray 2.5x a cluster started
where a token exists (~/.ray/auth_token, which any local `ray.init()` writes) requires that token, and a
driver sends it only when RAY_AUTH_MODE=token is set: without it Ray retries for half a minute and then
reports a failed connection. So the address is probed first: a connection, then one unauthenticated gRPC
call, whose answer says whether the cluster wants a token.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.core.extras import install_command

CLIENT_PREFIX = "ray://"
# One cheap call each server answers; an UNAUTHENTICATED answer means it wants the token.
PROBES = {"gcs": "/ray.rpc.NodeInfoGcsService/GetClusterId", "client": "/ray.rpc.RayletDriver/ClusterInfo"}
TOKEN_PLACES = "~/.ray/auth_token, the file RAY_AUTH_TOKEN_PATH names, or RAY_AUTH_TOKEN"


def start_or_join(address: str | None, *, extra: str, num_cpus: int | None = None) -> bool:
    """Start Ray in this process (no address, nor RAY_ADDRESS) or join the cluster at `address`; True when
    this call started or joined it (the caller then shuts it down), False when Ray was running already.
    `extra` is the zoo extra that brings what the caller needs of Ray (named in the errors)."""
    try:
        import ray
    except ImportError as error:
        raise ZooError(f"Ray is not installed: {install_command(extra)}") from error
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None  # as ray.init reads it, but probed first
    if address:
        check_address(address, extra)
    try:
        # "local": a new Ray here. With no address, ray.init joins the cluster /tmp/ray/ray_current_cluster
        # names, which a stopped `ray start` leaves behind, and then retries it for minutes.
        ray.init(
            address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
            log_to_driver=False, configure_logging=False,
        )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ZooError(
            f"cannot start or reach Ray at {address or 'this machine'}: {first_line}", argument="address"
        ) from error
    return True


def check_address(address: str, extra: str) -> None:
    """A one-line ZooError unless `address` (HOST:PORT or ray://HOST:PORT) is a Ray cluster this driver can
    join: reachable, with `ray[client]` here for ray://, and with the cluster's token where it wants one."""
    kind = "client" if address.startswith(CLIENT_PREFIX) else "gcs"
    host, _, port = address.removeprefix(CLIENT_PREFIX).rpartition(":")
    if not host:  # "auto" and the like: Ray finds the cluster itself
        return
    # Ray retries an unreachable address for minutes; a plain connection attempt answers in seconds.
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        raise ZooError(
            f"cannot reach the Ray cluster at {address}: {error or type(error).__name__}", argument="address"
        ) from error
    try:
        import grpc
    except ImportError as error:
        if kind == "client":
            raise ZooError(
                f"{address} is a Ray Client address, which needs ray[client] here: {install_command(extra)}"
            ) from error
        return  # Ray's own connection reports the rest
    if _answers_unauthenticated(grpc, f"{host}:{port}", PROBES[kind], token=None):
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            raise ZooError(
                f"the Ray cluster at {address} requires its authentication token: set RAY_AUTH_MODE=token, with "
                f"the cluster's token in {TOKEN_PLACES}",
                argument="address",
            )
        token = auth_token()
        if token is None:
            raise ZooError(f"RAY_AUTH_MODE=token, but no token was found: put the cluster's token in {TOKEN_PLACES}")
        if _answers_unauthenticated(grpc, f"{host}:{port}", PROBES[kind], token=token):
            raise ZooError(f"the Ray cluster at {address} refuses this token: give it the cluster's ({TOKEN_PLACES})")


def auth_token() -> str | None:
    """The token a Ray driver sends, from where Ray looks for it (the environment first)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _answers_unauthenticated(grpc, target: str, method: str, token: str | None) -> bool:
    """Whether the server at `target` refuses one call for want of (this) token. Any other answer, even an
    error about the empty request, means it let the call through."""
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=lambda _: b"", response_deserializer=bytes)
        try:
            call(None, timeout=5, metadata=metadata)
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.UNAUTHENTICATED
    return False
