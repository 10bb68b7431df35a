"""Where units of work run: serially, on a local process pool, or on Ray, behind one interface.

``executor.run(fn, units, on_progress, on_warning)`` calls ``fn(unit, progress)`` for every
unit somewhere and yields ``(index, result)`` pairs as units finish. ``progress(amount)`` is
how a unit reports partial work (members trained); the executor brings it back to
``on_progress`` in the driver. Workers *return* their results; nothing here assumes a
filesystem shared with the driver: ``executor.share(obj)`` gives a handle that travels to the
units cheaply (Ray's object store) and ``resolve(handle)`` gives the object back inside a unit.
The thread policy is the executor's: each unit learns how many threads it may use from
``unit_threads()``.

On Ray, a unit's completion travels with its result (a future) and nothing else; partial
progress travels through a small restartable actor that the driver only ever polls, so losing
any process of the run but the driver changes neither the outcome nor the numbers: a unit
whose worker or node dies is retried (``executor.max_retries``), a lost node is named in one
warning line, a progress actor that dies is restarted (the bar may jump) or, should it stay
dead, dropped with one warning line. An exception raised by our own code is reported once and
stops the run; so does a unit that died more often than ``max_retries`` allows. Either way the
results that had already come back are handed over first, so no finished cell is lost.
Progress of an attempt that died is taken back when the retry starts, so the progress bar
never counts a unit twice.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from fairensemble.common.errors import ExecutorError
from fairensemble.config import ExecutorConfig

UnitFn = Callable[[Any, Callable[[float], None]], Any]
WarnFn = Callable[[str], None]

RAY_TASK_NAME = "fairensemble-unit"  # a running unit's process title is "ray::" + this
RAY_PROGRESS_NAME = "FairensembleProgress"  # the progress actor's process title: "ray::" + this
_THREADS: int | None = None  # threads a unit in this process may use (set by the executor)
_READABLE: set[str] = set()  # folders this worker process has found readable


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
        # A pool loaded before this point no longer reads the environment: a spawned local
        # worker has imported numpy while re-importing the driver's main module, and its
        # OpenBLAS ran as many threads as cores in every worker, oversubscribing the machine
        # during evaluation. threadpoolctl comes with scikit-learn.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn requires it
            return
        threadpool_limits(threads)


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


def resolve(handle: Any) -> Any:
    """Inside a unit: the object behind a handle from ``Executor.share``."""
    ray = sys.modules.get("ray")  # a Ray handle exists only where Ray is already imported
    if ray is not None and isinstance(handle, ray.ObjectRef):
        return ray.get(handle)
    return handle


def node_name() -> str:
    """Where this process runs, as a user would look it up: the Ray node (id and ip) inside a
    Ray worker, else the host name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        node_id = ray.get_runtime_context().get_node_id()
        return f"Ray node {node_id} ({ray.util.get_node_ip_address()})"
    return f"host {socket.gethostname()}"


def check_readable(folders: list[str]) -> None:
    """Stop with one line naming the folder and the node when this worker cannot read a folder
    its unit's data needs (a path that exists only on the driver's machine). Checked on the
    first unit of each worker process; the data source would otherwise fail on some file deep
    inside the folder, without saying where."""
    for folder in folders:
        if folder in _READABLE:
            continue
        try:
            with os.scandir(folder) as entries:
                next(entries, None)
        except OSError as err:
            why = err.strerror or type(err).__name__
            raise ExecutorError(
                f"{folder}: image folder not readable on {node_name()} ({why}); every worker "
                "node must see the dataset's image folders at the same path (shared storage)"
            ) from None
        _READABLE.add(folder)


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

    def share(self, obj: Any) -> Any:
        """A handle to ``obj`` for units to ``resolve``: here the object itself."""
        return obj

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None],
            on_warning: WarnFn | None = None) -> Iterator[tuple[int, Any]]:
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

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None],
            on_warning: WarnFn | None = None) -> Iterator[tuple[int, Any]]:
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


class FairensembleProgress:
    """The progress actor (its class name is its process title): the units' progress items
    until the driver takes them. Ray restarts it if its process dies; what it held is lost, so
    the bar may jump, but no result changes."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, float]] = []

    def add(self, index: int, token: str, amount: float) -> None:
        self.items.append((index, token, amount))

    def take(self) -> list[tuple[int, str, float]]:
        items, self.items = self.items, []
        return items


def _ray_call(fn: UnitFn, unit: Any, index: int, actor: Any, threads: int) -> Any:
    _set_threads(threads, environment=True)
    token = uuid.uuid4().hex
    last: list[Any] = []

    def progress(amount: float) -> None:
        try:  # never wait for progress, never fail a unit over it
            last[:] = [actor.add.remote(index, token, amount)]
        except Exception:
            pass

    result = fn(unit, progress)
    if last:  # calls from one caller run in order: this one done means all of them are
        import ray

        ray.wait(last, timeout=2.0)
    return result


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "executor.kind: 'ray' needs Ray, which is not installed; install the extra: "
            "pip install 'fairensemble[ray]'"
        ) from None
    return ray


def _last_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


class _ProgressPoll:
    """The driver's side of the progress actor: polled, never waited for. The actor is
    restarted by Ray if its process dies (``max_restarts=-1``; calls to it are retried), and
    it lives on the driver's node, so a lost worker node does not take it along. Should it still
    become unreachable, progress is dropped with one warning line: units report completion
    through their results, which never pass through it."""

    def __init__(self, ray: Any, tracker: _Tracker, warn: WarnFn) -> None:
        self.ray, self.tracker, self.warn = ray, tracker, warn
        options: dict[str, Any] = {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1}
        try:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            # pinned (a soft preference was not kept on a busy cluster): if the driver's node
            # goes, the driver usually goes with it
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
        except Exception:  # no node id to pin it to: Ray places it
            pass
        self.actor = ray.remote(FairensembleProgress).options(**options).remote()
        self.ref: Any = self.actor.take.remote()

    def poll(self, timeout: float = 0.0, again: bool = True) -> bool:
        """Take what the actor holds if its answer is back (then ask ``again``); False while it
        is not."""
        if self.ref is None:
            return True
        done, _ = self.ray.wait([self.ref], timeout=timeout)
        if not done:
            return False
        try:
            items = self.ray.get(self.ref)
        except self.ray.exceptions.ActorUnavailableError:  # restarting: ask again
            items = []
        except self.ray.exceptions.RayError as err:
            self.ref = None
            self.warn(f"progress from the Ray workers was lost ({type(err).__name__}); the "
                      "bar now moves as units finish; results are unaffected")
            return True
        for item in items:
            self.tracker.add(*item)
        self.ref = self.actor.take.remote() if again else None
        return True

    def finish(self) -> None:
        """After the last result: what the units sent before returning (they wait for it)."""
        if self.poll(timeout=2.0):
            self.poll(timeout=2.0, again=False)

    def close(self) -> None:
        if self.ref is not None:  # a call left pending at the kill would be logged as failed
            self.ray.wait([self.ref], timeout=1.0)
        try:
            self.ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone, or Ray shut down under us: nothing to release
            pass


class _NodeWatch:
    """Names each Ray node that was alive during the run and is lost, once (Ray retries its
    units elsewhere; the user should know why the run slowed down)."""

    EVERY_S = 1.0

    def __init__(self, ray: Any, warn: WarnFn) -> None:
        self.ray, self.warn = ray, warn
        self.alive = self._alive()
        self.next = time.monotonic() + self.EVERY_S

    def _alive(self) -> dict[str, str]:
        return {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in self.ray.nodes()
                if n.get("Alive")}

    def check(self, now: bool = False) -> None:
        if not now and time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.EVERY_S
        alive = self._alive()
        for node_id, ip in self.alive.items():
            if node_id not in alive:
                self.warn(f"Ray node {node_id} ({ip}) left the cluster; units it was running "
                          "are retried on the other nodes (executor.max_retries), finished "
                          "cells are kept")
        self.alive = alive


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

    def share(self, obj: Any) -> Any:
        """An object-store reference: each node fetches the object once, no unit reads a file."""
        return self.ray.put(obj)

    def run(self, fn: UnitFn, units: list[Any], on_progress: Callable[[float], None],
            on_warning: WarnFn | None = None) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        if not units:
            return
        warn = on_warning or (lambda line: None)
        task = ray.remote(_ray_call).options(
            name=RAY_TASK_NAME, num_cpus=self.cfg.cpus_per_unit, num_gpus=self.cfg.gpus_per_unit,
            max_retries=self.cfg.max_retries, retry_exceptions=False,
        )
        fn_ref = ray.put(fn)
        progress = _ProgressPoll(ray, _Tracker(on_progress), warn)
        nodes = _NodeWatch(ray, warn)
        pending = {task.remote(fn_ref, u, i, progress.actor, self.threads): i
                   for i, u in enumerate(units)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                if ready:  # and every other result already back
                    ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                progress.poll()
                nodes.check()
                failure: BaseException | None = None
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        failure = failure or self._failure(err)
                        continue
                    yield index, result  # results back before a failure are kept
                if failure is not None:
                    raise failure
            nodes.check(now=True)
            progress.finish()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            progress.close()

    def _failure(self, err: Exception) -> BaseException:
        """What stops the run when a unit failed: our own exception as it was raised (one line
        at the CLI), or one line saying how the unit's Ray worker was lost."""
        ray = self.ray
        if isinstance(err, ray.exceptions.RayTaskError):
            cause = err.cause if isinstance(err.cause, BaseException) else None
            return cause if cause is not None else ExecutorError(_last_line(err))
        retries = self.cfg.max_retries
        lost = ray.exceptions
        how = ("its node was lost" if isinstance(err, lost.NodeDiedError) else
               "Ray killed its worker for memory" if isinstance(err, lost.OutOfMemoryError) else
               "its worker process died" if isinstance(err, lost.WorkerCrashedError) else None)
        if how is not None:
            return ExecutorError(
                f"a unit was lost {retries + 1} time(s), the last time because {how}: more "
                f"than executor.max_retries ({retries}) allows; finished cells are kept, run "
                "the same command again to resume")
        return ExecutorError(f"a unit was lost by Ray ({type(err).__name__}: "
                             f"{_last_line(err)}); finished cells are kept")

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
           "check_readable", "default_threads", "import_ray", "make_executor", "node_name",
           "resolve", "unit_threads"]
