"""The Context handed to a task: its inputs, its outputs, its config, its scratch space."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeromancy.errors import UsageError
from aeromancy.tasks import input_name


@dataclass(frozen=True)
class SavedOutput:
    """An output the task asked to publish: where its files are and the metadata to attach."""

    name: str
    type: str
    path: Path
    metadata: Mapping[str, Any]


class Context:
    """What a running task sees. Created by the executor, one per task run.

    ``load`` fetches an input lazily (``loader`` materialises a version and returns its
    read-only directory); ``save`` only records what to publish, because outputs are
    published after the task function returns successfully, never before.
    """

    def __init__(
        self,
        *,
        task: str,
        run_id: str,
        config: Mapping[str, Any],
        workdir: Path,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, str],
        loader: Callable[[str], Path],
        logger: Callable[[Mapping[str, Any], int | None], None],
    ) -> None:
        self._task = task
        self._run_id = run_id
        self._config = dict(config)
        self._workdir = workdir
        self._inputs = inputs
        self._outputs = outputs
        self._loader = loader
        self._logger = logger
        self._loaded: dict[str, Path] = {}
        self._saved: dict[str, SavedOutput] = {}
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        """Return the id of this task run (also the run record's name in the store)."""
        return self._run_id

    @property
    def config(self) -> dict[str, Any]:
        """Return a copy of the resolved config (defaults with ``--set`` applied)."""
        return dict(self._config)

    @property
    def seed(self) -> int | None:
        """Return this run's seed: 0..N-1 under ``--repeat N``, else the config's, else None."""
        seed = self._config.get("seed")
        return seed if isinstance(seed, int) else None

    @property
    def workdir(self) -> Path:
        """Return a fresh scratch directory for this task run, removed after it."""
        return self._workdir

    def _input_ref(self, name: str) -> str:
        if name in self._inputs:
            return name
        # A task may load ``other/raw`` as plain ``raw`` when that is unambiguous.
        matches = [ref for ref in self._inputs if input_name(ref) == name]
        if len(matches) == 1:
            return matches[0]
        declared = ", ".join(self._inputs) or "none"
        raise UsageError(
            f"task {self._task} loads {name!r}, which is not one of its inputs ({declared})",
            "add it to @task(inputs=[...])",
        )

    def load(self, name: str) -> Path:
        """Return a read-only directory holding the input version's files.

        Raises UsageError when ``name`` is not a declared input of this task.
        """
        ref = self._input_ref(name)
        with self._lock:
            if ref not in self._loaded:
                self._loaded[ref] = self._loader(ref)
            return self._loaded[ref]

    def save(self, name: str, path: Path | str, metadata: Mapping[str, Any] | None = None) -> None:
        """Mark a file or directory as the output ``name``; it is published when the task ends.

        Raises UsageError for an undeclared output, a second save of one output, or a
        path that does not exist. The files must stay in place until the task returns.
        """
        if name not in self._outputs:
            declared = ", ".join(self._outputs) or "none"
            raise UsageError(
                f"task {self._task} saves {name!r}, which is not one of its outputs ({declared})",
                "add it to @task(outputs=...)",
            )
        source = Path(os.path.abspath(path))  # not resolve(): a link must stay visible
        if not source.exists():
            raise UsageError(f"task {self._task} saves {name!r} from {path}, which does not exist")
        with self._lock:
            if name in self._saved:
                raise UsageError(f"task {self._task} saves {name!r} twice", "save each output once")
            self._saved[name] = SavedOutput(name, self._outputs[name], source, dict(metadata or {}))

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics for this run (the last value of each is kept in the run record)."""
        self._logger(dict(metrics), step)

    def saved_outputs(self) -> dict[str, SavedOutput]:
        """Return what the task saved so far, by output name (empty when nothing)."""
        with self._lock:
            return dict(self._saved)

    def __repr__(self) -> str:
        return f"Context(task={self._task!r}, run_id={self._run_id!r})"
