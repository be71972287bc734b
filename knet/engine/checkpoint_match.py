# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Refuse to evaluate a model whose checkpoint does not fit it.

mmengine loads ``load_from`` non-strictly and only logs "do not match
exactly", so testing with a checkpoint of another model (a semantic one
for a panoptic config, a released checkpoint that was never converted)
evaluated random weights. Test, val and demo runs now stop with the
mismatch report of ``tools/convert_checkpoint.py``
(:func:`knet.utils.checkpoint_convert.compare_state_dicts`);
``--allow-partial`` / ``allow_partial_checkpoint=True`` loads what fits
(fine-tuning workflows), and training with ``load_from`` keeps mmengine's
partial loading but logs the same summary.
"""
import re
from collections import OrderedDict
from typing import Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.logging import print_log

from knet.utils.checkpoint_convert import (CheckpointMismatchError,
                                           compare_state_dicts)

#: config key that lets test / val / demo runs load a partial checkpoint
ALLOW_PARTIAL_KEY = 'allow_partial_checkpoint'

# mmengine's default for ``Runner.load_checkpoint``
DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )


def checkpoint_state_dict(
        checkpoint: Mapping,
        revise_keys: Iterable[Tuple[str, str]] = DEFAULT_REVISE_KEYS
) -> 'OrderedDict[str, object]':
    """The state dict mmengine would load from ``checkpoint`` (same
    ``state_dict`` unwrapping and key revision as mmengine's loader)."""
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, Mapping) else {}
    state = OrderedDict(state)
    for pattern, repl in revise_keys:
        state = OrderedDict(
            (re.sub(pattern, repl, k), v) for k, v in state.items())
    return state


def checkpoint_problems(
        model: torch.nn.Module,
        checkpoint: Mapping,
        revise_keys: Iterable[Tuple[str, str]] = DEFAULT_REVISE_KEYS
) -> List[str]:
    """Missing / unexpected / mis-shaped keys of ``checkpoint`` for
    ``model``, one report line per kind (empty when it fits exactly).

    BatchNorm's ``num_batches_tracked`` counters may be absent (checkpoints
    of old PyTorch versions): they are not used at test time.
    """
    from mmengine.model import BaseTTAModel, is_model_wrapper

    # mmengine loads into the wrapped model of DDP and TTA wrappers too
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    state = checkpoint_state_dict(checkpoint, revise_keys)
    state = OrderedDict(
        (k, v if isinstance(v, torch.Tensor) else torch.empty(0))
        for k, v in state.items())
    expected = OrderedDict(
        (k, v) for k, v in model.state_dict().items()
        if k in state or not k.endswith('.num_batches_tracked'))
    return compare_state_dicts(state, expected)


def mismatch_report(filename: str, problems: List[str],
                    config: Optional[str] = None) -> str:
    """One message naming the checkpoint, the config and every problem."""
    target = f'the model of {config}' if config else 'the model'
    return (f'checkpoint {filename} does not match {target}:\n  ' +
            '\n  '.join(problems))


def check_checkpoint_matches(model: torch.nn.Module,
                             checkpoint: Mapping,
                             filename: str,
                             allow_partial: bool = False,
                             config: Optional[str] = None,
                             revise_keys: Iterable[Tuple[str, str]] = (
                                 DEFAULT_REVISE_KEYS)) -> List[str]:
    """Raise :class:`CheckpointMismatchError` when ``checkpoint`` does not
    fit ``model`` (unless ``allow_partial``: then log a warning).

    Returns the problems found (empty when the checkpoint fits exactly).
    """
    problems = checkpoint_problems(model, checkpoint, revise_keys)
    if not problems:
        return problems
    report = mismatch_report(filename, problems, config)
    if not allow_partial:
        raise CheckpointMismatchError(
            report + '\nEvaluating it would use randomly initialised '
            'weights for the keys above. Use the checkpoint of this '
            'config; convert a released K-Net checkpoint first with '
            '`python tools/convert_checkpoint.py SRC DST`; or, to load '
            'only the matching weights on purpose, pass --allow-partial '
            f'(tools/test.py, tools/demo.py) or set `{ALLOW_PARTIAL_KEY}'
            '=True` in the config (mim test: --cfg-options '
            f'{ALLOW_PARTIAL_KEY}=True).')
    print_log(
        report + '\nLoading only the matching weights (partial loading '
        'allowed).', logger='current', level=30)
    return problems


def build_checked_inferencer(config: str,
                             weights: str,
                             device: str = 'cpu',
                             allow_partial: bool = False,
                             **kwargs):
    """mmdet's ``DetInferencer`` / mmseg's ``MMSegInferencer`` (by the
    config's ``default_scope``) that refuses ``weights`` of another model
    (see :func:`check_checkpoint_matches`)."""
    from mmengine.config import Config
    if Config.fromfile(config).get('default_scope') == 'mmseg':
        from mmseg.apis import MMSegInferencer as Base
    else:
        from mmdet.apis import DetInferencer as Base

    class CheckedInferencer(Base):

        def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
            if checkpoint is not None:
                check_checkpoint_matches(model, checkpoint, weights,
                                         allow_partial, config)
            super()._load_weights_to_model(model, checkpoint, cfg)

    return CheckedInferencer(
        model=config, weights=weights, device=device, **kwargs)


__all__ = [
    'ALLOW_PARTIAL_KEY', 'CheckpointMismatchError', 'build_checked_inferencer',
    'checkpoint_problems', 'checkpoint_state_dict', 'check_checkpoint_matches',
    'mismatch_report'
]
