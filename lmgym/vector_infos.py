"""Episode infos of the native vector env (:mod:`lmgym.vector_env`): a split's examples as columns, and the
batched form of ``VectorEnv._add_info`` that merges one column per key into the ``{key, _key}`` info dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lmgym.task import Example

_NUMERIC = (int, float, bool)  # info values stored in a typed array (as VectorEnv._add_info does)
_TEXTLIKE = {str, list, tuple}  # info values stored in an object array, one per slot


class SplitColumns(NamedTuple):
    """One split's examples as columns, made once: what episode infos and the scorer read, by example index."""

    prompts: np.ndarray  # (n,) object: each example's prompt
    sources: np.ndarray  # (n,) object: each example's source
    references: np.ndarray  # (n,) object: each example's references (a tuple)
    has_meta: bool  # whether any example has ``meta`` for the scorer
    prompt_masks: np.ndarray  # (n, P) uint8: each example's ``prompt_mask``
    names: np.ndarray  # (num_envs,) object: the split's name in every entry (copied for the infos)

    @classmethod
    def build(cls, split: str, examples: Sequence[Example], prompt_lengths: np.ndarray, prompt_width: int,
              num_envs: int) -> SplitColumns:
        """The columns of ``examples`` (of ``split``), whose prompts are ``prompt_lengths`` tokens long, left-padded
        to ``prompt_width``."""
        column = lambda values: np.fromiter(values, object, len(examples))
        masks = np.arange(prompt_width)[None, :] >= (prompt_width - np.asarray(prompt_lengths))[:, None]
        return cls(column(e.prompt for e in examples), column(e.source for e in examples),
                   column(e.references for e in examples), any(e.meta for e in examples), masks.astype(np.uint8),
                   np.full(num_envs, split, object))


def merge_info(infos: dict[str, Any], rows: np.ndarray, values: dict[str, Any], every_mask: np.ndarray
               ) -> dict[str, Any]:
    """Batched ``VectorEnv._add_info``: the same keys, dtypes and ``_key`` masks, one call per key.

    ``values`` maps each key to one value per row (a list or an array), or to a dict of such columns;
    dicts (and columns of dicts) merge recursively. A numeric array column keeps its dtype and, where it
    covers every slot, is the info array itself (so it must not be shared). ``every_mask`` is an all-true
    ``(num_envs,)`` array, copied for the masks of keys that every slot has.
    """
    N = len(every_mask)
    every = len(rows) == N
    for key, column in values.items():
        if every and type(column) is np.ndarray and key not in infos and (
                column.dtype.kind in "iufc" or (column.dtype.kind == "O" and type(column[0]) in _TEXTLIKE)):
            infos[key], infos["_" + key] = column, every_mask.copy()  # (the usual case: one step, no checks)
            continue
        if isinstance(column, dict):  # one column per sub-key (e.g. the parts of a score)
            array = merge_info(infos.get(key, {}), rows, column, every_mask)
        elif not len(column):
            continue
        elif isinstance(column, np.ndarray) and column.dtype.kind in "iufc":  # typed: as the first's type
            array = infos.get(key)
            if array is None and every:
                array = column
            else:
                if array is None:
                    array = np.zeros(N, column.dtype)
                array[rows] = column
        elif isinstance(first := column[0], dict):
            sub = {k: [d[k] for d in column] for k in first}
            array = merge_info(infos.get(key, {}), rows, sub, every_mask)
        else:
            array = infos.get(key)
            numeric = type(first) in _NUMERIC or isinstance(first, np.number)
            if not numeric and not (isinstance(column, np.ndarray) and column.dtype.kind == "O"):
                column = np.fromiter(column, object, len(column))  # one element per row, lists included
            if array is None and every:  # every slot: the column is the array
                array = np.array(column, dtype=type(first)) if numeric else column
            else:
                if array is None:
                    array = np.zeros(N, type(first)) if numeric else np.full(N, None, object)
                array[rows] = column
        mask = infos.get("_" + key)
        if mask is None and every:
            mask = every_mask.copy()
        else:
            if mask is None:
                mask = np.zeros(N, np.bool_)
            mask[rows] = True
        infos[key], infos["_" + key] = array, mask
    return infos
