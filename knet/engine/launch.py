# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Config adjustments shared by ``tools/train.py`` and ``tools/test.py``:
launcher, CPU distributed runs (gloo), mixed precision, work dir."""
import os
import os.path as osp
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config


def _init_cpu_process_group(launcher: str) -> None:
    """Start a gloo process group for CPU runs (mmengine's init_dist calls
    ``torch.cuda.set_device``, which fails without GPUs)."""
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1') or '127.0.0.1'
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault('MASTER_ADDR', addr)
        os.environ['WORLD_SIZE'] = str(ntasks)
        os.environ['RANK'] = str(proc_id)
        os.environ.setdefault('LOCAL_RANK',
                              os.environ.get('SLURM_LOCALID', '0'))
    elif launcher == 'mpi':
        os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
        os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
        os.environ.setdefault('LOCAL_RANK',
                              os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29500')
    dist.init_process_group(backend='gloo')


def configure_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on machines without CUDA, distributed runs
    use gloo and a CPU DDP wrapper."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper = dict(wrapper)
    wrapper['type'] = 'CPUDistributedDataParallel'
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    _init_cpu_process_group(launcher)


def enable_amp(cfg: Config) -> None:
    """fp16 + dynamic loss scale on CUDA, bf16 autocast on CPU."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') not in ('OptimWrapper',
                                                   'AmpOptimWrapper',
                                                   'CPUAmpOptimWrapper'):
        raise ValueError('--amp only works with OptimWrapper, got '
                         f"{wrapper.get('type')}")
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'CPUAmpOptimWrapper'
        wrapper.pop('loss_scale', None)


def default_work_dir(cfg: Config, config_path: str) -> str:
    """``work_dirs/<config name>`` unless the config sets one."""
    if cfg.get('work_dir'):
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
