"""The served models: which versions are loaded, polling for new ones, admission control.

Each model's loaded versions live in an immutable mapping replaced as a whole
(copy on write), so request threads read it without locks while the poller
loads a new version and then drops the old one. A version folder is loaded
once its files have stopped changing between two polls (a copy in progress
is not loaded half-written).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kva.logs import RateLimitedLog
from kva.tfserving.errors import InvalidArgument, NotFound, Unavailable
from kva.tfserving.model_config import ModelConfig, ModelConfigError, load_model_config
from kva.tfserving.servable import ModelLoadError, Servable

logger = logging.getLogger(__name__)

Loader = Callable[[str, int, Path], Servable]
Fingerprint = tuple[tuple[str, int, int], ...]


class Admission:
    """Counts a model's requests running or queued; refuses beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    @property
    def inflight(self) -> int:
        return self._count

    def saturated(self) -> bool:
        """True while the model takes no more work (readiness reports not ready)."""
        return self._count >= self.limit

    def enter(self, name: str) -> None:
        """Admit one request or raise :class:`Unavailable` at once."""
        with self._lock:
            if self._count >= self.limit:
                raise Unavailable(
                    f"model {name} is at its limit of {self.limit} requests in flight; "
                    "retry later or elsewhere"
                )
            self._count += 1

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


@dataclass
class ModelState:
    """One configured model: its loaded versions and bookkeeping for the poller."""

    config: ModelConfig
    admission: Admission
    versions: MappingProxyType[int, Servable] = field(default_factory=lambda: MappingProxyType({}))
    seen: dict[int, Fingerprint] = field(default_factory=dict)
    failed: dict[int, Fingerprint] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)  # why each failed version failed
    scanned: bool = False  # the first scan loads what it finds without waiting a poll


class ModelManager:
    """Loads, serves and retires model versions for a set of configured models."""

    def __init__(self, configs: list[ModelConfig], loader: Loader, max_inflight: int) -> None:
        self.models = {c.name: ModelState(c, Admission(max_inflight)) for c in configs}
        self._max_inflight = max_inflight
        self._loader = loader
        self._loaded_once = threading.Event()
        self._poll_lock = threading.Lock()
        self._log = RateLimitedLog(logger, 60.0)

    # -- lookups used by the request handlers ---------------------------------
    def state(self, name: str) -> ModelState:
        state = self.models.get(name)
        if state is None:
            raise NotFound(f"Servable not found for request: Latest({name})")
        return state

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request names (latest when neither version nor label is given).

        Version 0 also means "latest", as in OpenVINO Model Server: its clients
        (``ovmsclient``) send ``model_version=0`` unless told otherwise, and
        TF Serving never numbers a version 0 for a client to ask for by mistake.

        Raises:
            NotFound: unknown model, or the version is not loaded (404).
            InvalidArgument: unknown version label (400).
        """
        state = self.models.get(name)
        if version == 0:
            version = None
        if label is not None:
            if state is None or label not in state.config.version_labels:
                raise InvalidArgument(f"Unrecognized servable version label: {label}")
            version = state.config.version_labels[label]
        if state is None:
            request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise NotFound(f"Servable not found for request: {request}")
        versions = state.versions
        if version is None:
            if not versions:
                raise NotFound(f"Servable not found for request: Latest({name}){_why(state)}")
            return versions[max(versions)]
        found = versions.get(version)
        if found is None:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return found

    def status_versions(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[int]:
        """The loaded versions a status request names, newest first.

        No version, or version 0 (OVMS's "default", which ``ovmsclient`` sends),
        means every loaded version; a label means the version it points at.

        Raises:
            NotFound: unknown model, nothing loaded, or the version is not loaded (404).
            InvalidArgument: unknown version label (400).
        """
        if label is not None:
            version = self.resolve(name, label=label).version
        state = self.models.get(name)
        if state is None or not state.versions:
            raise NotFound(f"Could not find any versions of model {name}{_why(state)}")
        if not version:
            return sorted(state.versions, reverse=True)
        if version not in state.versions:
            raise NotFound(f"Could not find version {version} of model {name}")
        return [version]

    def ready(self) -> bool:
        """Every model loaded at least once and none saturated."""
        if not self._loaded_once.is_set():
            return False
        return all(s.versions and not s.admission.saturated() for s in self.models.values())

    def model_ready(self, name: str) -> bool:
        state = self.models.get(name)
        return bool(state and state.versions and not state.admission.saturated())

    @property
    def loaded(self) -> bool:
        return self._loaded_once.is_set()

    # -- the poller -------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float) -> None:
        """Scan now (loading everything found), then every ``interval`` seconds until ``stop``."""
        self.poll()
        self._loaded_once.set()
        if interval <= 0:
            return
        while not stop.wait(interval):
            self.poll()

    def reconfigure(self, configs: list[ModelConfig]) -> None:
        """Serve exactly ``configs`` from now on (TF Serving's config file reload).

        A model whose base path is unchanged keeps its loaded versions (its
        policy and labels are updated); new models load on the next poll;
        models no longer listed are dropped.
        """
        with self._poll_lock:
            models: dict[str, ModelState] = {}
            for config in configs:
                state = self.models.get(config.name)
                if state is None or state.config.base_path != config.base_path:
                    state = ModelState(config, Admission(self._max_inflight))
                    logger.info("model %s added (%s)", config.name, config.base_path)
                state.config = config
                models[config.name] = state
            for name in set(self.models) - set(models):
                logger.info("model %s removed from the configuration", name)
            self.models = models

    def poll(self) -> None:
        """One scan of every model's base path: load new versions, unload retired ones."""
        with self._poll_lock:
            for state in list(self.models.values()):
                try:
                    self._poll_model(state)
                except OSError as exc:
                    self._log.log(
                        state.config.name,
                        logging.ERROR,
                        "%s: cannot scan %s: %s",
                        state.config.name,
                        state.config.base_path,
                        exc,
                    )
                except Exception:  # noqa: BLE001 - the poller must outlive any one model
                    logger.exception("%s: unexpected error while polling", state.config.name)

    def _poll_model(self, state: ModelState) -> None:
        config = state.config
        initial, state.scanned = not state.scanned, True
        found = _scan(config.base_path)
        if not found:
            self._log.log(
                config.name,
                logging.WARNING,
                "%s: no version folders under %s yet",
                config.name,
                config.base_path,
            )
        wanted = set(config.policy.select(sorted(found)))
        current = dict(state.versions)
        loaded: dict[int, Servable] = {}
        for version in sorted(wanted - set(current)):
            fingerprint = found[version]
            stable = initial or state.seen.get(version) == fingerprint
            state.seen[version] = fingerprint
            if not stable or state.failed.get(version) == fingerprint:
                continue
            servable = self._load(config.name, version, config.base_path / str(version))
            if isinstance(servable, str):
                state.failed[version] = fingerprint
                state.errors[version] = servable
            else:
                loaded[version] = servable
                state.errors.pop(version, None)
        pending = wanted - set(current) - set(loaded)
        # availability first: retire old versions only once every wanted one is up
        keep = {v: s for v, s in current.items() if v in wanted or (pending and v in found)}
        if not loaded and len(keep) == len(current):
            return
        if not keep and not loaded and current:
            logger.warning("%s: every served version vanished from disk", config.name)
        state.versions = MappingProxyType({**keep, **loaded})
        for version in sorted(set(current) - set(keep)):
            logger.info("%s: unloaded version %d", config.name, version)

    def _load(self, name: str, version: int, folder: Path) -> Servable | str:
        """The loaded version, or why it could not be loaded."""
        try:
            return self._loader(name, version, folder)
        except ModelLoadError as exc:
            logger.error("%s: version %d not loaded: %s", name, version, exc)
            return str(exc)


def _why(state: ModelState | None) -> str:
    """``" (version N failed to load: ...)"`` for a model with nothing loaded, else ``""``."""
    if state is None or not state.errors:
        return ""
    version = max(state.errors)
    return f" (version {version} failed to load: {state.errors[version]})"


def _scan(base: Path) -> dict[int, Fingerprint]:
    """Version folders (positive integer names) under ``base`` and their file fingerprints."""
    found: dict[int, Fingerprint] = {}
    for entry in base.iterdir():
        name = entry.name
        if not entry.is_dir() or not (name.isascii() and name.isdigit()) or int(name) <= 0:
            continue
        files = sorted(p for p in entry.rglob("*") if p.is_file())
        stats = [(p, p.stat()) for p in files]
        found[int(entry.name)] = tuple(
            (str(p.relative_to(entry)), s.st_size, s.st_mtime_ns) for p, s in stats
        )
    return found


def watch_config_file(
    path: Path,
    manager: ModelManager,
    current: list[ModelConfig],
    stop: threading.Event,
    interval: float,
) -> None:
    """Re-read the model config file every ``interval`` seconds and apply changes.

    A file that no longer parses is reported (once a minute) and the models
    keep being served as they are.
    """
    errors = RateLimitedLog(logger, 60.0)
    while not stop.wait(interval):
        try:
            configs = load_model_config(path)
        except ModelConfigError as exc:
            errors.log("config", logging.ERROR, "model config not reloaded: %s", exc)
            continue
        if configs != current:
            logger.info("model config %s changed: reloading", path)
            manager.reconfigure(configs)
            current = configs


def make_loader(device: str, config: Mapping[str, str], cache_dir: Path | None = None) -> Loader:
    """A loader compiling each version with one shared ``openvino.Core`` on ``device`` with
    ``config`` (:func:`kva.model_files.compile_config`); models converted from other formats
    are kept in ``cache_dir`` (None: not kept)."""
    import openvino as ov

    core: Any = ov.Core()

    def load(name: str, version: int, folder: Path) -> Servable:
        return Servable(core, name, version, folder, device, config, cache_dir)

    return load
