"""The task's own process: read the request, import the task module, call the function.

Whatever the task does ends with this process: ``sys.exit`` and ``os._exit`` end it with
their code, a crash or a signal kills it, threads it leaves running stop when it exits,
and its ``chdir`` and module state are gone with it. The parent names the cause.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from aeromancy.context import Context
from aeromancy.errors import UsageError
from aeromancy.execution.child.lifetime import die_with_parent
from aeromancy.execution.child.protocol import (
    LOG_EVENT,
    MAX_ERROR_CHARS,
    PROTOCOL,
    RESULT_EVENT,
    EventWriter,
)
from aeromancy.execution.child.reads import ReadRecorder
from aeromancy.tasks import TaskSpec, collect_tasks, load_module


def main(argv: list[str] | None = None) -> NoReturn:
    """``run REQUEST_PATH EVENTS_FD PARENT_PID``: a spawned child's one task run."""
    request_path, events_fd, parent_pid = (sys.argv[2:] if argv is None else argv)[:3]
    die_with_parent(int(parent_pid))
    serve(Path(request_path), int(events_fd))


def serve(request_path: Path, events_fd: int) -> NoReturn:
    """Run the request at ``request_path``; exit 0 after sending its result to ``events_fd``."""
    faulthandler.enable()  # a segfault leaves a Python traceback on stderr
    events = EventWriter(events_fd)
    request = json.loads(request_path.read_text())
    if request.get("protocol") != PROTOCOL:
        raise SystemExit(f"aeromancy child: protocol {request.get('protocol')} is not {PROTOCOL}")
    try:
        result = run_request(request, events)
    except SystemExit as exc:
        _exit(exit_status(exc.code))
    events.send(RESULT_EVENT, **result, peak_rss_bytes=own_peak_rss())
    # os._exit, not return: threads the task left running must not keep this process.
    _exit(0)


def own_peak_rss() -> int | None:
    """Return this process's peak resident memory (VmHWM), or None where unknown.

    The parent's ``wait4`` figure is no use for this: Linux folds the peak of the
    address space a child had before its exec (the parent's, after fork or vfork) into
    the child's ``ru_maxrss``, so a large parent would make every task look large. A
    process forked by the fork server starts its peak afresh (``reset_peak_rss``).
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def reset_peak_rss() -> None:
    """Make the peak RSS this process's current RSS (Linux >= 4.0; else nothing).

    A forked process starts with the fork server's peak; from here on its peak is what
    it holds now (the interpreter and the child runtime, as a fresh process would after
    its imports) plus what the task adds.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_request(request: dict[str, Any], events: EventWriter) -> dict[str, Any]:
    """Return the ``result`` event's fields for calling the requested task."""
    try:
        spec = find_task(request["tasks"], Path(request["root"]), request["task"])
    except Exception:
        return {"ok": False, "error": _traceback()}
    inputs = {ref: Path(path) for ref, path in request["inputs"].items()}

    def log(metrics: Any, step: int | None) -> None:
        events.send(LOG_EVENT, metrics=metrics, step=step)

    ctx = Context(
        task=spec.name,
        run_id=request["run_id"],
        config=request["config"],
        workdir=Path(request["workdir"]),
        inputs=inputs,
        outputs=request["outputs"],
        loader=inputs.__getitem__,
        logger=log,
    )
    # A ``seed`` set by --repeat reaches the task as ctx.seed unless it declares one.
    params = {k: v for k, v in request["config"].items() if k in spec.defaults}
    reads = ReadRecorder()
    sys.addaudithook(reads.hook)  # a hook cannot be removed: it stays off once the task ends
    reads.active = True
    try:
        spec.fn(ctx, **params)
    except SystemExit:
        raise
    except BaseException:  # KeyboardInterrupt too: it is this task's failure
        return {"ok": False, "error": _traceback()}
    finally:
        reads.active = False
    scratch = str(Path(request["workdir"]).parent)
    files = reads.dependencies(request["root"], [scratch, request["workdir"]])
    saved = ctx.saved_outputs()
    missing = [name for name in request["outputs"] if name not in saved]
    if missing:
        error = UsageError(
            f"task {spec.name} returned without saving {', '.join(missing)}",
            "call ctx.save for every declared output",
        )
        return {"ok": False, "error": str(error)}
    return {"ok": True, "saved": [_saved_entry(out) for out in saved.values()], "files": files}


def find_task(tasks: str, root: Path, name: str) -> TaskSpec:
    """Return the task ``name`` of the task module. Raises LookupError when it is gone."""
    specs = collect_tasks(load_module(tasks, root))
    if name not in specs:
        raise LookupError(f"task module {tasks} no longer defines task {name}")
    return specs[name]


def _saved_entry(out: Any) -> dict[str, Any]:
    return {"name": out.name, "path": str(out.path), "metadata": dict(out.metadata)}


def _traceback() -> str:
    return traceback.format_exc()[-MAX_ERROR_CHARS:]


def exit_status(code: object) -> int:
    """Return the status ``sys.exit(code)`` gives a process (a message is printed, then 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _exit(status: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
