"""The windows of SAKT's inputs (SAKT's and DKT's) and what SAKT's metrics need, built from the events a batch of whole students at a time, so the
log is never in memory at once: the vocabulary in a first pass over the batches, then each batch's
sequences (ktirt.kt.sequences) cut into windows that go to each split's shards (ktirt/kt/window_sets.py).

What is kept of the responses is small per response: the validation and test students' outcomes (the AUCs
need them together) and the test responses' items and skills; the training responses become counts per item
and per skill (the floors). Global response indices are positions in the events' order, as the in-memory
sequences number them, so one batch gives exactly the windows of before."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ktirt import distributed
from ktirt.errors import InputError
from ktirt.evaluation import MeanFloors
from ktirt.kt.fixed_runs import in_fixed_runs
from ktirt.kt.sakt_training import ModelVocab, scored, window_tensors
from ktirt.kt.sequences import MAX_SKILLS, Sequences, load_sequences, query_windows
from ktirt.kt.window_sets import Tensors, WindowSet, stored
from ktirt.heap import freed_memory_returned
from ktirt.split import SPLITS
from ktirt.truth import response_hashes
from ktirt.vocab import Vocabulary

MASKING_STUDENTS = 1000
"""test students whose events the future-masking check rewrites (the first ones in user order)"""
Batches = Callable[[], Iterable[pa.Table]]
"""a fresh pass over the events, tables of whole students in user order"""


@dataclass
class SplitResponses:
    """One split's responses: global index, outcome and, for the test split, item and primary skill (vocabulary
    indices) and, for the oracle, the hash of their keys (ktirt.truth.response_hashes)."""

    index: list = field(default_factory=list)
    correct: list = field(default_factory=list)
    item: list = field(default_factory=list)
    skill: list = field(default_factory=list)
    key_hash: list = field(default_factory=list)

    def add(self, seqs: Sequences, local: np.ndarray, offset: int, details: bool, table: pa.Table | None = None) -> None:
        """The responses at `local` of `seqs` (`offset`: responses in earlier batches); with `details` their item
        and skill, with `table` their keys' hashes."""
        self.index.append(local + offset)
        self.correct.append(seqs.correct[local])
        if details:
            self.item.append(seqs.item[local].astype(np.int32))
            self.skill.append(seqs.skill[local].astype(np.int32))
        if table is not None:
            self.key_hash.append(response_hashes(table.take(pa.array(local))))

    def done(self) -> "SplitResponses":
        cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
        return SplitResponses(cat(self.index, np.int64), cat(self.correct, np.int8), cat(self.item, np.int32),
                              cat(self.skill, np.int32), cat(self.key_hash, np.uint64) if self.key_hash else None)


@dataclass
class BuiltWindows:
    """Everything SAKT's run needs of the events."""

    vocab: Vocabulary
    mv: ModelVocab
    skill_width: int
    """the skill matrices' width (every batch's)"""
    n_responses: int
    sets: dict[str, WindowSet]
    responses: dict[str, SplitResponses]
    floors: MeanFloors
    """the training responses' floors (item-mean, skill-mean)"""
    masking_events: pa.Table | None
    """the first MASKING_STUDENTS test students' events, for the future-masking check"""


class _Widest:
    """The batches passed through, noting the longest skill list among them (at most MAX_SKILLS) in `width`:
    every batch's skill matrix takes that width, so the windows do not depend on how the students are batched."""

    def __init__(self, batches: Iterable[pa.Table]):
        self.batches, self.width = batches, 1

    def __iter__(self) -> Iterator[pa.Table]:
        for t in self.batches:
            longest = pc.max(pc.list_value_length(t["skill_ids"])).as_py() or 0
            self.width = min(max(self.width, int(longest)), MAX_SKILLS)
            yield t


@contextmanager
def built_windows(batches: Batches, split: dict, model_vocab: Callable[[Vocabulary], ModelVocab], L: int,
                  shard_windows: int, with_keys: bool = False, test: bool = True) -> Iterator[BuiltWindows]:
    """The windows of length `L` of the training, validation and (with `test`) test students over `batches`
    (shards past the first on disk in a temporary folder, removed on exit); `model_vocab` turns the vocabulary
    into the model's; `with_keys` keeps the test responses' key hashes for the oracle."""
    widest = _Widest(batches())
    with freed_memory_returned():
        vocab = Vocabulary.from_batches(widest, split["train"])
    strides = {"train": L, "val": max(1, L // 2)} | ({"test": max(1, L // 2)} if test else {})
    with tempfile.TemporaryDirectory(prefix="ktirt-windows-") as folder:
        with freed_memory_returned():
            built = _build(batches, split, BuiltWindows(vocab, model_vocab(vocab), widest.width, 0, {}, {},
                                                        MeanFloors(), None),
                           strides, Path(folder), shard_windows, with_keys)
        yield built


def _build(batches: Batches, split: dict, b: BuiltWindows, strides: dict[str, int], folder: Path, shard_windows: int,
           with_keys: bool) -> BuiltWindows:
    """The second pass: each batch's windows into `strides`' splits' shards, what the metrics need kept."""
    L = strides["train"]
    writers = {s: _ShardWriter(folder / s, shard_windows) for s in strides}
    responses = {s: SplitResponses() for s in strides if s != "train"}
    masking, before, mine, schema = [], dict.fromkeys(strides, 0), [], None
    for table in batches():
        seqs, _ = load_sequences(table, split, b.vocab, b.skill_width)
        schema = table.schema
        if "test" in strides:
            masking.append(_masking_rows(table, seqs, before["test"]))
        for s, stride in strides.items():
            w = query_windows(seqs, s, L, stride)
            t = with_global_indices(window_tensors(seqs, w, b.mv), b.n_responses)
            student = np.searchsorted(seqs.offsets, w.index[:, 0], side="right") - 1
            owned = _owned(seqs, student, s, before[s])
            writers[s].add(t, owned)
            if s == "train" and owned is not None:
                mine.extend(seqs.users[np.unique(student[owned])])
            before[s] += int((seqs.split == SPLITS.index(s)).sum())
        tr = seqs.responses_of("train")
        b.floors.add(seqs.item[tr], seqs.skill[tr], seqs.correct[tr])
        for s, r in responses.items():
            r.add(seqs, seqs.responses_of(s), b.n_responses, s == "test", table if with_keys and s == "test" else None)
        b.n_responses += len(seqs.item)
    if not b.n_responses:
        raise InputError("no events to train on", "events.parquet")
    if distributed.world_size() > 1:
        distributed.log_shard("training students", mine)
    return replace(b, sets={s: w.done() for s, w in writers.items()}, responses={s: r.done() for s, r in responses.items()},
                   masking_events=_concat(masking, schema))


def with_global_indices(t: Tensors, offset: int) -> Tensors:
    """A batch's window tensors with their response indices made global (`offset` responses came before)."""
    t["index"] = torch.where(t["index"] >= 0, t["index"] + offset, -1)
    return t


def every_window(batches: Batches, split: dict, b: BuiltWindows, L: int) -> Iterator[tuple[pa.Table, Tensors]]:
    """Each batch of students with the windows that score every one of its responses (stride L // 2, global
    indices): how a model is asked about every response without holding the log."""
    offset = 0
    for table in batches():
        seqs, _ = load_sequences(table, split, b.vocab, b.skill_width)
        windows = with_global_indices(window_tensors(seqs, query_windows(seqs, None, L, max(1, L // 2)), b.mv), offset)
        del seqs
        yield table, windows
        del windows  # not held while the next batch's are made
        offset += table.num_rows


def every_prediction(model: torch.nn.Module, batches: Batches, split: dict, b: BuiltWindows, L: int,
                     batch_size: int = 256) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Each batch of students with the model's P(correct) of every one of its rows, the windows scored
    `batch_size` at a time across the batches' edges (`in_fixed_runs`)."""
    device = next(model.parameters()).device

    def parts():
        for table, t in every_window(batches, split, b, L):
            yield table, table.num_rows, t
            del t  # not held while the next batch's windows are made

    for table, values in in_fixed_runs(parts(), batch_size, lambda chunk: scored(model, chunk, batch_size, device)):
        yield table, values[:, 0]


def _owned(seqs: Sequences, student: np.ndarray, s: str, before: int) -> np.ndarray | None:
    """Per window (`student`: its student in the batch), whether its student is this rank's
    (ktirt.distributed.shard_mask over the split's students in user order: `before` of them came in earlier
    batches); None in a single process."""
    if distributed.world_size() == 1:
        return None
    ordinal = before + np.searchsorted(np.flatnonzero(seqs.split == SPLITS.index(s)), student)
    return ordinal % distributed.world_size() == distributed.rank()


def _masking_rows(table: pa.Table, seqs: Sequences, taken: int) -> pa.Table:
    """This batch's rows of the test students the future-masking check still wants (MASKING_STUDENTS in all)."""
    room = MASKING_STUDENTS - taken
    test = np.flatnonzero(seqs.split == SPLITS.index("test"))[: max(room, 0)]
    rows = [np.arange(seqs.offsets[u], seqs.offsets[u + 1]) for u in test]
    return table.take(pa.array(np.concatenate(rows) if rows else np.zeros(0, np.int64), pa.int64()))


def _concat(tables: list[pa.Table], schema: pa.Schema | None) -> pa.Table | None:
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table() if schema else None


class _ShardWriter:
    """One split's windows as they come, batch after batch, cut into shards of about `limit` windows (counted
    over every rank): the first stays in memory while it is the only one; the others are saved under `stem`."""

    def __init__(self, stem: Path, limit: int):
        self.stem, self.limit = stem, limit
        self.parts: list[Tensors] = []
        self.shards: list[Tensors | Path] = []
        self.sizes, self.global_sizes, self.owned = [], [], []
        self.held, self.seen, self.targets = 0, 0, 0

    def add(self, t: Tensors, owned: np.ndarray | None) -> None:
        n = len(t["score"])
        if owned is not None:
            self.owned.append(owned)
            t = {k: v[torch.as_tensor(owned)] for k, v in t.items()}
        if n:
            self.parts.append(stored(t))
        self.held, self.seen = self.held + len(t["score"]), self.seen + n
        self.targets += int(t["score"].sum())
        if self.seen >= self.limit:
            self._cut(to_disk=True)

    def _cut(self, to_disk: bool) -> None:
        t = {k: torch.cat([p[k] for p in self.parts]) for k in self.parts[0]} if self.parts else {}
        if to_disk and t:
            path = self.stem.with_name(f"{self.stem.name}-{len(self.shards)}.pt")
            torch.save(t, path)
            t = path
        if self.seen:
            self.shards.append(t)
            self.sizes.append(self.held)
            self.global_sizes.append(self.seen)
        self.parts, self.held, self.seen = [], 0, 0

    def done(self) -> WindowSet:
        self._cut(to_disk=bool(self.shards))
        owned = np.concatenate(self.owned) if self.owned else None
        return WindowSet(self.shards, np.array(self.sizes, np.int64), np.array(self.global_sizes, np.int64), owned,
                         self.targets)
