"""``gsad evaluate``: score a model, or another method's outputs, on paired data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gsad.cli import options
from gsad.config import LAYOUTS, PIPELINES, SPLITS
from gsad.errors import InputError

_EVALUATE_EPILOG = """\
pipelines (--checkpoint):
  reference  the reference test script's (default on LOL layouts): LOL-v1 and LOL-v2-real
             inputs mirror-padded 8 px top/bottom and 4 px left/right (OpenCV BORDER_REFLECT)
             whatever the network and cropped back, LOL-v2-synthetic unpadded; ONE noise
             stream seeded once (--seed) for the whole run, images in sorted name order, so an
             image's result depends on the images before it, as in the reference.
  enhance    each image exactly as 'gsad enhance' makes it (default on low/ + high/ folders):
             its own noise seeded with --seed, padded only to the network's stride.
Scores use the reference's arithmetic: GT-mean grey = 0.299 R + 0.587 G + 0.114 B (float32
means), clip, truncate to 8 bits; PSNR on 8-bit images; SSIM scikit-image 7x7 per channel.
Detail ratio (not a paper score): variance of the output's grey Laplacian over the reference's,
1 as much fine texture, < 1 smoothed, > 1 grain; the table shows its median over the images.
e.g. the paper's LOL-v2-real settings with its released weights:
  gsad evaluate --data LOLv2 --layout lol-v2-real --checkpoint lolv2_real_gen.pth \\
      --sampler reference --steps 10 --beta-start 9e-4 --beta-end 0.85 --seed 4357 \\
      --start noise --ensemble 1 --outputs out/
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EVALUATE_EPILOG
    p.add_argument("--data", required=True, metavar="DIR", help="paired dataset (LOL-v1, LOL-v2 or low/ + high/)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="dataset layout (default: detected)")
    p.add_argument("--split", default="test", choices=SPLITS,
                   help="LOL split to score (default test; ignored by the low/ + high/ layout)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="C", help="enhance the low images with this model (a gsad .safetensors file, training run folder, "
                          "reference .pth, or 'default' for the bundled model), then score")
    src.add_argument("--predictions", metavar="DIR",
                     help="score another method's outputs in DIR, matched to the pairs by file stem")
    options.add_sampler_options(p)
    p.add_argument("--pipeline", default="auto", choices=("auto", *PIPELINES),
                   help="how --checkpoint runs on the pairs (see below); auto: reference on LOL layouts, "
                        "enhance on low/ + high/ folders")
    p.add_argument("--cuda-noise", action="store_true",
                   help="draw the reference pipeline's noise stream on the CUDA device, as the reference code "
                        "does on a GPU (needs --device cuda; the default CPU stream gives the same noise anywhere)")
    p.add_argument("--device", default="auto", help="device for --checkpoint: auto, cpu, cuda or cuda:N")
    p.add_argument("--outputs", metavar="DIR",
                   help="with --checkpoint: also write each enhanced image (before GT-mean scaling) to "
                        "DIR/<low image name>.png")
    options.add_speed_options(p, evaluate=True)
    p.add_argument("--report", metavar="FILE.json", help="write the full report (summary and per image) as JSON")
    p.add_argument("--csv", metavar="FILE.csv", help="write per-image scores as CSV")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --outputs images and --report/--csv files (inputs are never replaced)")
    options.add_max_megapixels(p)
    p.add_argument("--per-image", action="store_true", help="also print one table row per image")


def run(args: argparse.Namespace) -> int:
    from gsad.checkpoints import resolve_checkpoint
    from gsad.data.layouts import detect_layout, find_pairs
    from gsad.evaluation.evaluate import (
        check_scoreable,
        evaluate,
        format_table,
        match_predictions,
        write_report_csv,
        write_report_json,
    )
    from gsad.evaluation.lpips import LPIPS
    from gsad.evaluation.metrics import require_skimage
    from gsad.files import OutputPlan

    require_skimage()
    args.checkpoint = options.model(args.checkpoint)
    if args.outputs and not args.checkpoint:
        raise InputError("--outputs: only with --checkpoint (--predictions are already files)")
    layout = detect_layout(args.data) if args.layout == "auto" else args.layout
    pairs = find_pairs(args.data, layout=layout, split=args.split)
    inputs = [p for pair in pairs for p in (pair.low, pair.high)]
    predictions = match_predictions(pairs, args.predictions) if args.predictions else None
    if predictions:
        inputs += predictions.values()
    check_scoreable(pairs, low=bool(args.checkpoint), predictions=predictions)  # before any model runs
    if args.checkpoint:
        inputs.append(resolve_checkpoint(args.checkpoint))
    plan = OutputPlan(inputs)  # reports (and --outputs images) checked before anything is scored
    for path in (args.report, args.csv):
        if path:
            plan.check(path, args.overwrite)
    reason = LPIPS.unavailable_reason()
    if reason:
        print(f"{options.PROG}: note: {reason}", file=sys.stderr)
    lpips = None if reason else LPIPS()
    predict = None
    if args.checkpoint:
        predict = _model_predictor(args, pairs, layout)
        if predict is None:  # a rank other than 0 under torchrun: its share is done, rank 0 scores
            return 0
    report = evaluate(pairs, predict=predict, predictions_dir=args.predictions, lpips=lpips, progress=True,
                      max_pixels=options.max_pixels(args), outputs=args.outputs, overwrite=args.overwrite, plan=plan)
    print(format_table(report, per_image=args.per_image))
    if args.report:
        write_report_json(args.report, report, overwrite=args.overwrite)
    if args.csv:
        write_report_csv(args.csv, report, overwrite=args.overwrite)
    return 0


def _model_predictor(args: argparse.Namespace, pairs: list, layout: str) -> Callable | None:
    """How ``--checkpoint`` turns a low image into an output. Under torchrun the ranks enhance their
    shares (gsad.enhance.parallel) and rank 0 gets every output; the reference pipeline's one noise
    stream runs on rank 0 alone. None on the ranks other than 0, which have nothing left to do."""
    from gsad.enhance.parallel import predict_shared, shared_enhancer
    from gsad.evaluation.evaluate import default_pipeline, evaluation_precision, model_predictor
    from gsad.runtime.distributed import process_group

    with process_group(args.device) as ctx:
        precision = evaluation_precision(args.precision, args.checkpoint)
        enhancer = shared_enhancer(ctx, args.checkpoint, precision, args.engine)
        if ctx.is_main:
            options.report_path(enhancer, args)
        settings = enhancer.settings(**options.sampler_overrides(args))
        pipeline = default_pipeline(layout) if args.pipeline == "auto" else args.pipeline
        predict = model_predictor(enhancer, settings, pipeline, layout, cuda_noise=args.cuda_noise)
        if ctx.is_main:
            print(f"{options.PROG}: {pipeline} pipeline, {layout} layout, {settings}", file=sys.stderr)
        if not ctx.distributed or pipeline == "reference":
            return predict if ctx.is_main else None
        outputs = predict_shared(ctx, pairs, predict, options.max_pixels(args))
    if not ctx.is_main:
        return None
    return lambda name, low: outputs[name]
