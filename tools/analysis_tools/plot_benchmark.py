# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Bar chart of one or more ``benchmark.py --json`` results.

    python tools/analysis_tools/plot_benchmark.py a.json [b.json ...] \
        --out docs/figs/benchmark_cpu.png

One group of panels per JSON file (e.g. one per input size): median wall
time of every phase (bars: models; whiskers: min / max of the runs; the
label on the second model is ``other / ours``), and peak memory growth.
"""
import argparse
import json
import os
import os.path as osp

PHASES = [('infer', 'end-to-end\n(DetInferencer)'),
          ('tensor', "model only\n(mode='tensor')"),
          ('predict', 'model + post-proc.\n(predict)'),
          ('train', 'train step\n(fwd+bwd+optim)')]


def _short(name: str) -> str:
    if name.startswith('knet'):
        return 'K-Net R-50 (ours)'
    if name.startswith('mask2former'):
        return 'Mask2Former R-50'
    return name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('jsons', nargs='+')
    parser.add_argument('--out', default='docs/figs/benchmark_cpu.png')
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    reports = [json.load(open(p)) for p in args.jsons]
    fig, axes = plt.subplots(
        len(reports), 2, figsize=(13, 4.2 * len(reports)), squeeze=False,
        gridspec_kw=dict(width_ratios=[3, 1.3]))
    colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']
    for row, report in enumerate(reports):
        meta, models = report['meta'], report['models']
        phases = [(k, t) for k, t in PHASES if k in models[0]]
        x = np.arange(len(phases))
        width = 0.8 / len(models)
        ax = axes[row][0]
        for i, model in enumerate(models):
            med = [model[k]['wall_s']['median'] for k, _ in phases]
            lo = [med[j] - model[k]['wall_s']['min']
                  for j, (k, _) in enumerate(phases)]
            hi = [model[k]['wall_s']['max'] - med[j]
                  for j, (k, _) in enumerate(phases)]
            bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, med,
                          width, yerr=[lo, hi], capsize=3,
                          color=colors[i % len(colors)],
                          label=_short(model['name']))
            for j, bar in enumerate(bars):
                text = f'{med[j]:.1f}s'
                if i == 1 and report.get('ratios'):
                    ratio = report['ratios'].get(f'{phases[j][0]}_time')
                    if ratio:
                        text += f'\n{ratio:.2f}x'
                top = model[phases[j][0]]['wall_s']['max']  # whisker
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2, top),
                            ha='center', va='bottom', fontsize=8,
                            xytext=(0, 2), textcoords='offset points')
        ax.set_xticks(x, [t for _, t in phases], fontsize=9)
        ax.set_ylabel('seconds (median; whiskers min/max)')
        ax.set_title(
            f"{meta['input_size'][0]}x{meta['input_size'][1]}, "
            f"{meta['device']} {meta['threads']} threads, "
            f"{'AMP' if meta['amp'] else 'fp32'}, median of {meta['runs']} "
            f"after {meta['warmup']} warm-up (ratio = Mask2Former / K-Net)",
            fontsize=10)
        ax.legend(fontsize=9)
        ax.margins(y=0.18)

        ax = axes[row][1]
        mem_phases = [k for k, _ in phases
                      if models[0][k].get('peak_mem_mb') is not None]
        xm = np.arange(len(mem_phases))
        for i, model in enumerate(models):
            vals = [model[k]['peak_mem_mb'] / 1024 for k in mem_phases]
            ax.bar(xm + (i - (len(models) - 1) / 2) * width, vals, width,
                   color=colors[i % len(colors)])
        ax.set_xticks(xm, mem_phases, fontsize=9)
        ax.set_ylabel('peak RSS growth [GiB]')
        ax.set_title('memory', fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
