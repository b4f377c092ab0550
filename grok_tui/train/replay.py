"""A run's views as they were: a bounded history of the matrices the views draw, kept in RUN/replay.npz.

`grok-tui watch RUN_DIR` steps through it (sources/watched.py), so a finished run
can be shown from start to end in seconds. What is kept is what the views are
drawn from (`inspect_model`'s matrices and the neurons' inputs); the spectrum and
the parity mass are computed again from those when a frame is shown.

Bounded whatever the run's length: every `every`-th frame offered is kept (and
always the newest), and when the kept frames reach the capacity, `every` doubles
and every other one goes. So a run of any length ends with between half the
capacity and the capacity, spread evenly over the whole run. The capacity comes
from a byte budget: BUDGET_BYTES of float16 over one frame's size, between
MIN_FRAMES and MAX_FRAMES (README, "Replay", gives the bytes per run).

The file is one `np.savez` archive of plain arrays (no pickle: it is read with
`allow_pickle=False`), written whole to a temporary and renamed over the old one
(files.write_atomic), so a crash mid-write leaves the last history whole.
Anything wrong with a file read back is a ReplayError: one line. Its arrays are
float16, half of float32's bytes; they are not deflated: on the default run's
history deflate saved 13% of the bytes at over 20 times the cost (1.2 s against
0.05 s, measured in one run on a 2-core box), paid by the training thread at
each checkpoint.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grok_tui.files import write_atomic

REPLAY = "replay.npz"
FORMAT, VERSION = "grok-tui replay", 1
# float16 bytes of the frames kept: ~8 MiB, whatever the model (its frames are fewer the larger they are).
BUDGET_BYTES = 8 * 2**20
MIN_FRAMES, MAX_FRAMES = 16, 256
# A file read back may say anything: what it may unpack to, at most (the budget, with room to spare).
MAX_FILE_BYTES = 16 * BUDGET_BYTES
# float16's largest finite value: larger weights are kept at it rather than as infinity.
F16_MAX = float(np.finfo(np.float16).max)
# Where a frame's neuron inputs are: none, an array of their own, or (>= 0) that matrix's array.
NO_INPUTS, OWN_INPUTS = -1, -2


class ReplayError(Exception):
    """A replay file that cannot be read, with why in one line."""


@dataclass(frozen=True)
class Frame:
    """The views' data at one step, float32 again."""

    step: int
    matrices: dict[str, np.ndarray]
    neuron_inputs: np.ndarray | None


@dataclass(frozen=True)
class _Kept:
    ordinal: int  # how many frames were offered before this one
    step: int
    arrays: tuple[np.ndarray, ...]  # float16: the matrices in layout order, then the inputs if they are their own


@dataclass(frozen=True)
class _Layout:
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # of the matrices, then of the inputs where they are their own
    inputs: int  # NO_INPUTS, OWN_INPUTS or a matrix's index

    @property
    def frame_bytes(self) -> int:
        return sum(2 * int(np.prod(shape)) for shape in self.shapes)


def _layout(matrices: Mapping[str, np.ndarray], inputs: np.ndarray | None) -> _Layout:
    names = tuple(matrices)
    shapes = [tuple(int(n) for n in matrices[name].shape) for name in names]
    if inputs is None:
        where = NO_INPUTS
    else:
        # The model's embedding is often the neurons' inputs too: kept once.
        where = next((i for i, name in enumerate(names) if matrices[name] is inputs), OWN_INPUTS)
        if where == OWN_INPUTS:
            shapes.append(tuple(int(n) for n in inputs.shape))
    return _Layout(names, tuple(shapes), where)


def capacity_for(frame_bytes: int, budget: int = BUDGET_BYTES) -> int:
    """How many frames of `frame_bytes` the budget holds, between MIN_FRAMES and MAX_FRAMES, even."""
    frames = budget // max(frame_bytes, 1)
    return max(MIN_FRAMES, min(MAX_FRAMES, frames - frames % 2))


def _half(array: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(array, dtype=np.float32), -F16_MAX, F16_MAX).astype(np.float16)


class Recorder:
    """The bounded history of one run's views: `add` a frame at each inspection, `save` it now and then."""

    def __init__(self, capacity: int | None = None):
        """`capacity`: the most frames kept (even, >= 2); None: what BUDGET_BYTES holds of the first frame."""
        if capacity is not None and (capacity < 2 or capacity % 2):
            raise ValueError(f"capacity {capacity} is not an even number >= 2")
        self.capacity = capacity
        self.every = 1  # keep every `every`-th frame offered
        self.offered = 0
        self._kept: list[_Kept] = []
        self._newest: _Kept | None = None  # the newest frame when it is not one of those kept: kept too
        self._layout: _Layout | None = None
        self.dirty = False  # frames added since the last save

    # ---- recording ------------------------------------------------------------------------------------

    def add(self, step: int, matrices: Mapping[str, np.ndarray], neuron_inputs: np.ndarray | None = None) -> None:
        """Offer the views at `step`. A frame at or before a step already kept replaces what follows it (a run
        resumed from its checkpoint, or gone back to its last finite state); one whose matrices changed shape
        is not kept (the history's arrays are one block per matrix)."""
        # An empty matrix has nothing to draw (a script's views may hold one): left out.
        matrices = {name: m for name, m in matrices.items() if np.size(m)}
        neuron_inputs = neuron_inputs if neuron_inputs is not None and np.size(neuron_inputs) else None
        layout = _layout(matrices, neuron_inputs)
        if self._layout is None:
            self._layout = layout
            if self.capacity is None:
                self.capacity = capacity_for(layout.frame_bytes)
        elif layout != self._layout:
            return
        self._forget_from(step)
        arrays = tuple(_half(matrices[name]) for name in layout.names)
        if layout.inputs == OWN_INPUTS:
            assert neuron_inputs is not None
            arrays += (_half(neuron_inputs),)
        kept = _Kept(self.offered, step, arrays)
        self.offered += 1
        self.dirty = True
        if kept.ordinal % self.every:
            self._newest = kept
            return
        self._kept.append(kept)
        self._newest = None
        assert self.capacity is not None
        if len(self._kept) >= self.capacity:
            self.every *= 2
            self._kept = [k for k in self._kept if k.ordinal % self.every == 0]
            if self._kept[-1] is not kept:  # the newest frame is always there
                self._newest = kept

    def _forget_from(self, step: int) -> None:
        if self._newest is not None and self._newest.step >= step:
            self._newest = None
        if self._kept and self._kept[-1].step >= step:
            self._kept = [k for k in self._kept if k.step < step]

    def cut(self, step: int) -> None:
        """Forget the frames after `step` (a run resumed from its checkpoint at `step` trains them again)."""
        self._forget_from(step + 1)
        last = self._all()[-1:] or None
        self.offered = last[0].ordinal + 1 if last else 0

    # ---- reading --------------------------------------------------------------------------------------

    def _all(self) -> list[_Kept]:
        return self._kept + ([self._newest] if self._newest is not None else [])

    @property
    def steps(self) -> list[int]:
        """The steps of the frames held, in order."""
        return [k.step for k in self._all()]

    def __len__(self) -> int:
        return len(self._kept) + (self._newest is not None)

    def frame(self, index: int) -> Frame:
        """Frame `index` (of `steps`), its arrays float32."""
        kept = self._all()[index]
        layout = self._layout
        assert layout is not None
        matrices = {name: a.astype(np.float32) for name, a in zip(layout.names, kept.arrays, strict=False)}
        if layout.inputs == NO_INPUTS:
            inputs = None
        elif layout.inputs == OWN_INPUTS:
            inputs = kept.arrays[-1].astype(np.float32)
        else:
            inputs = matrices[layout.names[layout.inputs]]
        return Frame(kept.step, matrices, inputs)

    @property
    def nbytes(self) -> int:
        """The float16 bytes of the frames held (the file holds these and a few hundred bytes more)."""
        return sum(a.nbytes for k in self._all() for a in k.arrays)

    # ---- the file -------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        frames = self._all()
        layout = self._layout or _Layout((), (), NO_INPUTS)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "names": list(layout.names),
            "inputs": layout.inputs,
            "every": self.every,
            "offered": self.offered,
            "capacity": self.capacity,
        }
        arrays: dict[str, np.ndarray] = {
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            "steps": np.array([k.step for k in frames], dtype=np.int64),
            "ordinals": np.array([k.ordinal for k in frames], dtype=np.int64),
        }
        for i, shape in enumerate(layout.shapes):
            block = np.empty((len(frames), *shape), dtype=np.float16)
            for j, k in enumerate(frames):
                block[j] = k.arrays[i]
            arrays[f"array{i}"] = block
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    def save(self, run_dir: Path) -> None:
        """Write RUN/replay.npz whole (WriteError: a full disk), if anything was added since the last save."""
        if not self.dirty or not len(self):
            return
        write_atomic(Path(run_dir) / REPLAY, self.to_bytes())
        self.dirty = False

    @classmethod
    def from_bytes(cls, data: bytes, where: str = REPLAY) -> Recorder:
        """A history read back; ReplayError says in one line what is wrong with it."""
        try:
            return cls._read(data)
        except ReplayError as e:
            raise ReplayError(f"{where}: {e}") from None
        except Exception as e:  # numpy and zipfile raise many kinds for a damaged archive
            raise ReplayError(f"{where}: not a readable replay archive ({type(e).__name__})") from None

    @classmethod
    def load(cls, run_dir: Path) -> Recorder | None:
        """RUN/replay.npz, or None where the run kept none (an older grok-tui's); ReplayError: a damaged one."""
        path = Path(run_dir) / REPLAY
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ReplayError(f"{path}: cannot read it ({e.strerror or e})") from None
        return cls.from_bytes(data, str(path))

    @classmethod
    def _read(cls, data: bytes) -> Recorder:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_FILE_BYTES:
                raise ReplayError(f"unpacks to more than {MAX_FILE_BYTES:,} bytes")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            found = {name: npz[name] for name in npz.files}
        meta = _meta(found.get("meta"))
        names = meta["names"]
        steps, ordinals = _ints(found, "steps"), _ints(found, "ordinals")
        n = len(steps)
        if len(ordinals) != n:
            raise ReplayError(f"{n} steps but {len(ordinals)} ordinals")
        if n and (np.any(np.diff(steps) <= 0) or steps[0] < 0 or np.any(np.diff(ordinals) <= 0) or ordinals[0] < 0):
            raise ReplayError("its steps are not increasing")
        inputs = meta["inputs"]
        if not (inputs in (NO_INPUTS, OWN_INPUTS) or 0 <= inputs < len(names)):
            raise ReplayError(f"inputs {inputs} names no array")
        blocks = []
        for i in range(len(names) + (inputs == OWN_INPUTS)):
            block = found.get(f"array{i}")
            if not (isinstance(block, np.ndarray) and block.dtype == np.float16 and block.ndim == 3):
                raise ReplayError(f"array{i} is missing or not float16 frames of a matrix")
            if block.shape[0] != n or 0 in block.shape[1:]:
                raise ReplayError(f"array{i} holds {block.shape[0]} frames of {block.shape[1:]} for {n} steps")
            blocks.append(block)
        if not blocks and n:
            raise ReplayError("it holds steps but no arrays")
        shapes = tuple(tuple(int(s) for s in b.shape[1:]) for b in blocks)
        if inputs >= 0 and shapes[inputs][0] < 1:
            raise ReplayError("its inputs are empty")
        recorder = cls(meta["capacity"])
        recorder.every, recorder.offered = meta["every"], max(meta["offered"], int(ordinals[-1]) + 1 if n else 0)
        recorder._layout = _Layout(tuple(names), shapes, inputs)
        for j in range(n):
            kept = _Kept(int(ordinals[j]), int(steps[j]), tuple(b[j] for b in blocks))
            if kept.ordinal % recorder.every == 0 or j < n - 1:
                recorder._kept.append(kept)
            else:
                recorder._newest = kept
        return recorder


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v < 2**53


def _meta(raw: Any) -> dict[str, Any]:
    if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1):
        raise ReplayError("no meta record")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ReplayError("its meta record is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ReplayError(f"not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise ReplayError(f"version {meta.get('version')!r}: this grok-tui reads version {VERSION}")
    names = meta.get("names")
    if not (isinstance(names, list) and all(isinstance(n, str) and 0 < len(n) <= 200 for n in names)):
        raise ReplayError("its names are not a list of short strings")
    capacity: Any = meta.get("capacity")
    if not (_is_int(capacity, 2) and capacity % 2 == 0):
        raise ReplayError(f"capacity {capacity!r} is not an even number >= 2")
    every: Any = meta.get("every")
    if not (_is_int(every, 1) and every & (every - 1) == 0):
        raise ReplayError(f"every {every!r} is not a power of two")
    if not (_is_int(meta.get("offered")) and _is_int(meta.get("inputs"), OWN_INPUTS)):
        raise ReplayError("its counts are not integers")
    return meta


def _ints(found: dict[str, np.ndarray], name: str) -> np.ndarray:
    a = found.get(name)
    if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.ndim == 1):
        raise ReplayError(f"no {name}")
    return a


def step_index(steps: Sequence[int], step: int) -> int:
    """The index of the last frame at or before `step` (the first frame's if none is)."""
    return max(0, int(np.searchsorted(np.asarray(steps), step, side="right")) - 1)


__all__ = ["REPLAY", "Frame", "Recorder", "ReplayError", "capacity_for", "step_index"]
