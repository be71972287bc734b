# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Bar chart of one or more ``benchmark.py --json`` results.

    python tools/analysis_tools/plot_benchmark.py a.json [b.json ...] \
        --out docs/figs/benchmark_cpu.png

One group of panels per JSON file (e.g. one per input size): median wall
time of every phase (bars: models; whiskers: min / max of the runs; the
label on the second model is ``other / ours``), and peak memory growth.

VPS JSONs (``benchmark.py`` on a Video K-Net config) get one row each:
per-frame time of the video and the image model, the tracking overhead
by piece (as a fraction of the image model's time when it ran), and the
RSS after every frame. Plot image and VPS JSONs in separate figures.
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


VPS_PIECES = [('link', 'linking', '#9467bd'),
              ('embed', 'embedding', '#2ca02c'),
              ('semantic_filter', 'semantic filter', '#ff7f0e'),
              ('track_boxes', 'mask boxes', '#e377c2'),
              ('tracker', 'tracker', '#8c564b')]


def _is_vps(report: dict) -> bool:
    return report.get('meta', {}).get('mode') == 'vps'


def plot_vps_row(axes, report: dict) -> None:
    """Per-frame times, overhead pieces and RSS of one VPS report."""
    import numpy as np
    meta, vps = report['meta'], report['vps']
    rec = vps['per_frame']
    frames = np.arange(1, len(rec['video_s']) + 1)
    first, last = vps['timed_frames']
    base = 'image_s' in vps
    size = f"{meta['input_size'][0]}x{meta['input_size'][1]}"

    ax = axes[0]
    ax.plot(frames, rec['video_s'], 'o-', ms=3, color='#d62728',
            label=f"Video K-Net (median {vps['video_s']['median']:.3f} s)")
    if base:
        ax.plot(frames, rec['image_s'], 's-', ms=3, color='#1f77b4',
                label='image K-Net, same weights (median '
                f"{vps['image_s']['median']:.3f} s)")
    ax.axvspan(0.5, first - 0.5, color='0.9', label='warm-up (not timed)')
    ax.set_xlabel('frame')
    ax.set_ylabel('seconds per frame')
    ax.set_title(f"{size}, {meta['device']} {meta['threads']} threads, "
                 f"{meta['frames']} frames", fontsize=10)
    ax.legend(fontsize=8)
    ax.set_ylim(bottom=0)

    ax = axes[1]
    pieces = vps['overhead']['pieces_s']
    names = [(k, t, c) for k, t, c in VPS_PIECES if k in pieces]
    if base:
        image = vps['image_s']['median']
        vals = [100 * pieces[k]['median'] / image for k, _, _ in names]
        ax.set_ylabel('% of the image model\'s time')
        ax.axhline(15, color='k', ls='--', lw=1, label='goal 15%')
        total = 100 * vps['overhead']['fraction']
        title = f'tracking overhead: {total:.1f}% of the image model'
        marker = total
    else:
        vals = [1000 * pieces[k]['median'] for k, _, _ in names]
        ax.set_ylabel('ms per frame')
        marker = 1000 * pieces['total']['median']
        title = f'tracking overhead: {marker:.1f} ms per frame'
    bottom = 0.0
    for (_, label, c), v in zip(names, vals):
        ax.bar([0], [v], 0.5, bottom=bottom, color=c, label=label)
        bottom += v
    ax.plot([0], [marker], 'k_', ms=40, mew=2,
            label='median of the\nper-frame sums')
    ax.set_xticks([])
    ax.set_xlim(-0.4, 1.6)  # the legend sits right of the bar
    ax.set_ylim(0, 1.15 * max(bottom, marker, 15 if base else 0))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc='upper right')

    ax = axes[2]
    mem = vps['memory']
    ax.plot(frames, rec['rss_mb'], '-', color='#2ca02c', label='RSS')
    k, n = mem['rss_frames']
    ref = mem['rss_at_mb'][0]
    ax.axhspan(ref * 0.95, ref * 1.05, color='#2ca02c', alpha=0.12,
               label=f'RSS at frame {k} +/- 5%')
    ax.plot([k, n], mem['rss_at_mb'], 'ko', ms=4,
            label=f"frames {k}, {n}: {100 * mem['growth_fraction']:+.2f}%")
    if 'rss_trimmed_at_mb' in mem:
        ax.plot([k, n], mem['rss_trimmed_at_mb'], 'k^', ms=5,
                label='same, after gc + malloc_trim: '
                f"{100 * mem['trimmed_growth_fraction']:+.2f}%")
    ax.set_xlabel('frame')
    ax.set_ylabel('RSS after the frame [MiB]')
    ax.set_title(f"RSS after frame {k} vs after frame {n}", fontsize=10)
    ax.legend(fontsize=8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('jsons', nargs='+')
    parser.add_argument('--out', default='docs/figs/benchmark_cpu.png')
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    reports = []
    for path in args.jsons:
        with open(path) as f:
            reports.append(json.load(f))
    kinds = {_is_vps(r) for r in reports}
    if len(kinds) > 1:
        parser.error('plot image-model JSONs and VPS JSONs separately: '
                     f'{args.jsons} mixes both')
    if kinds == {True}:
        fig, axes = plt.subplots(
            len(reports), 3, figsize=(15, 4.2 * len(reports)),
            squeeze=False, gridspec_kw=dict(width_ratios=[3, 1.2, 2.2]))
        for row, report in enumerate(reports):
            plot_vps_row(axes[row], report)
        _save(fig, args.out)
        return
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
    _save(fig, args.out)


def _save(fig, out: str) -> None:
    """Write the figure through a temp file renamed into place."""
    fig.tight_layout()
    out = osp.abspath(out)
    os.makedirs(osp.dirname(out), exist_ok=True)
    root, ext = osp.splitext(out)
    tmp = f'{root}.tmp{os.getpid()}{ext}'
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
