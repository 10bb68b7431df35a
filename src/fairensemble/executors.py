"""Where units of work run: serially, on a local process pool, or on Ray, behind one interface.

``executor.run(fn, units, on_progress)`` calls ``fn(unit, progress)`` for every unit somewhere
and yields ``(index, result)`` pairs as units finish. ``progress(amount)`` is how a unit
reports partial work (members trained); the executor brings it back to ``on_progress`` in the
driver. Workers *return* their results; nothing here assumes a filesystem shared with the
driver. The thread policy is the executor's: each unit learns how many threads it may use from
``unit_threads()``.

A unit whose worker process dies is retried by Ray (``executor.max_retries``); an exception
raised by our own code is reported once and stops the run. Progress of an attempt that died is
taken back when the retry starts, so the progress bar never counts a unit twice.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from .config import ExecutorConfig

UnitFn = Callable[[Any, Callable[[float], None]], Any]

RAY_TASK_NAME = "fairensemble-unit"  # a running unit's process title is "ray::" + this
_THREADS: int | None = None  # threads a unit in this process may use (set by the executor)


class ExecutorError(RuntimeError):
    """The executor could not start or lost its workers; one line saying why."""


def unit_threads() -> int:
    """How many threads the current unit may use (torch.set_num_threads, BLAS)."""
    return _THREADS or max(1, os.cpu_count() or 1)


def _set_threads(threads: int, environment: bool = False) -> None:
    """Set this process's thread budget; ``environment`` also exports it to the BLAS and
    OpenMP pools (worker processes only: the driver's environment is the user's)."""
    global _THREADS
    _THREADS = threads
    if environment:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)


def default_threads(cfg: ExecutorConfig) -> int:
    """Threads per unit, fixed by the config (never by how many units are left), so a resumed
    run computes exactly what an uninterrupted one would. Ray CPU units use their
    ``cpus_per_unit``; local workers share the machine's cores."""
    if cfg.threads:
        return cfg.threads
    if cfg.kind == "ray":
        return max(1, int(cfg.cpus_per_unit))
    workers = cfg.workers if cfg.kind == "local" else 1
    return max(1, (os.cpu_count() or 1) // workers)


class _Tracker:
    """Per-unit progress with attempt tokens: a retried unit's earlier attempt is taken back."""

    def __init__(self, on_progress: Callable[[float], None]) -> None:
        self.on_progress = on_progress
        self.attempt: dict[int, str] = {}
        self.amount: dict[int, float] = {}

    def add(self, index: int, token: str, amount: float) -> None:
        if self.attempt.get(index) != token:
            taken_back = self.amount.get(index, 0.0)
            if taken_back:
                self.on_progress(-taken_back)
            self.attempt[index], self.amount[index] = token, 0.0
        self.amount[index] += amount
        self.on_progress(amount)


class Executor(AbstractContextManager):
    kind = "serial"

    def __init__(self, cfg: ExecutorConfig, threads: int | None = None) -> None:
        self.cfg = cfg
        self.threads = threads or default_threads(cfg)
        self.notes: list[str] = []  # one-line warnings for the user (set while starting)

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None]
            ) -> Iterator[tuple[int, Any]]:
        global _THREADS
        previous = _THREADS
        _set_threads(self.threads)
        try:
            for i, unit in enumerate(units):
                yield i, fn(unit, on_progress)
        finally:
            _THREADS = previous

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- local pool


def _local_init(threads: int) -> None:
    _set_threads(threads, environment=True)


def _local_call(fn: UnitFn, unit: Any, index: int, queue: Any, parent: int) -> Any:
    token = uuid.uuid4().hex

    def progress(amount: float) -> None:
        if os.getppid() != parent:  # the driver was killed: stop; what it wrote stays
            os._exit(1)
        queue.put((index, token, amount))

    return fn(unit, progress)


class LocalExecutor(Executor):
    """A pool of spawned processes on this machine (``executor.workers``)."""

    kind = "local"

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None]
            ) -> Iterator[tuple[int, Any]]:
        workers = min(self.cfg.workers, len(units))
        if workers <= 1:
            yield from Executor.run(self, fn, units, on_progress)
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = mp.get_context("spawn")
        tracker = _Tracker(on_progress)
        with ctx.Manager() as manager, ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_local_init, initargs=(self.threads,)
        ) as pool:
            queue = manager.Queue()
            pending = {pool.submit(_local_call, fn, u, i, queue, os.getpid()): i
                       for i, u in enumerate(units)}
            try:
                while pending:
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    while not queue.empty():
                        tracker.add(*queue.get())
                    for fut in done:
                        index = pending.pop(fut)
                        yield index, fut.result()
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise


# ----------------------------------------------------------------------------- Ray


def _ray_call(fn: UnitFn, unit: Any, index: int, queue: Any, threads: int) -> Any:
    _set_threads(threads, environment=True)
    token = uuid.uuid4().hex

    def progress(amount: float) -> None:
        queue.put_nowait((index, token, amount))

    return fn(unit, progress)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "executor.kind: 'ray' needs Ray, which is not installed; install the extra: "
            "pip install 'fairensemble[ray]'"
        ) from None
    return ray


class RayExecutor(Executor):
    """Units as Ray tasks: ``executor.address`` null starts a local Ray instance (with
    ``workers`` x ``cpus_per_unit`` CPUs), ``auto`` or ``ray://host:port`` joins a cluster.
    Each unit asks for ``cpus_per_unit`` CPUs and ``gpus_per_unit`` GPUs (fractions share a
    GPU); Ray sets CUDA_VISIBLE_DEVICES, so a GPU unit trains on the first visible device."""

    kind = "ray"

    def __init__(self, cfg: ExecutorConfig, threads: int | None = None) -> None:
        super().__init__(cfg, threads)
        self.ray = import_ray()
        self.started = False
        if not self.ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
            if cfg.address is None:
                kwargs.update(num_cpus=max(1, math.ceil(cfg.workers * cfg.cpus_per_unit)),
                              include_dashboard=False)
            else:
                kwargs["address"] = cfg.address
            try:
                self.ray.init(**kwargs)
            except Exception as err:  # a cluster that cannot be reached, a bad address
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ExecutorError(f"executor.address {cfg.address!r}: Ray did not start: "
                                    f"{first}") from None
            self.started = True
        self._check_feasible()

    def _check_feasible(self) -> None:
        """A unit that asks for more than any node has waits forever in Ray; say so instead.
        On a cluster, nodes may still join (autoscaling), so it is a warning there."""
        cpus, gpus = self.cfg.cpus_per_unit, self.cfg.gpus_per_unit
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0.0) >= cpus and r.get("GPU", 0.0) >= gpus for r in nodes):
            return
        best_gpu = max((r.get("GPU", 0.0) for r in nodes), default=0.0)
        best_cpu = max((r.get("CPU", 0.0) for r in nodes), default=0.0)
        message = (f"executor.gpus_per_unit: {gpus:g} GPU per unit, but no Ray node has that many "
                   f"(most on one node: {best_gpu:g})" if best_gpu < gpus else
                   f"executor.cpus_per_unit: {cpus:g} CPUs per unit, but no Ray node has that "
                   f"many (most on one node: {best_cpu:g})")
        if self.cfg.address is None:
            self.close()
            raise ExecutorError(message)
        self.notes.append(f"{message}; units wait until such a node joins the cluster")

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None]
            ) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        from ray.exceptions import RayTaskError
        from ray.util.queue import Queue

        if not units:
            return
        queue = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(_ray_call).options(
            name=RAY_TASK_NAME, num_cpus=self.cfg.cpus_per_unit, num_gpus=self.cfg.gpus_per_unit,
            max_retries=self.cfg.max_retries, retry_exceptions=False,
        )
        fn_ref = ray.put(fn)
        pending = {task.remote(fn_ref, u, i, queue, self.threads): i for i, u in enumerate(units)}
        tracker = _Tracker(on_progress)

        def drain() -> None:
            while True:
                batch = queue.get_nowait_batch(queue.qsize()) if queue.qsize() else []
                if not batch:
                    return
                for item in batch:
                    tracker.add(*item)

        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                drain()
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayTaskError as err:
                        cause = err.cause if isinstance(err.cause, BaseException) else None
                        if cause is not None:
                            raise cause from None
                        raise ExecutorError(str(err).strip().splitlines()[-1]) from None
                    except ray.exceptions.WorkerCrashedError:
                        raise ExecutorError(
                            f"a Ray worker died {self.cfg.max_retries + 1} times running one "
                            "unit (executor.max_retries); finished cells are kept"
                        ) from None
                    yield index, result
            drain()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            try:
                ray.kill(queue.actor)
            except Exception:
                pass

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def check_available(cfg: ExecutorConfig) -> None:
    """Fail before any work when the configured executor cannot run here."""
    if cfg.kind == "ray":
        import_ray()


def make_executor(cfg: ExecutorConfig, threads: int | None = None) -> Executor:
    kinds = {"serial": Executor, "local": LocalExecutor, "ray": RayExecutor}
    return kinds[cfg.kind](cfg, threads)


__all__ = ["Executor", "ExecutorError", "LocalExecutor", "RayExecutor", "check_available",
           "default_threads", "import_ray", "make_executor", "unit_threads"]
