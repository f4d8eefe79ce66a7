"""Train (model, recipe) runs of a config on one prepared split, outside Snakemake, and print the
convergence table: best validation NDCG@20, and the epochs and seconds to reach 95 % of it.

For measuring on a machine without Snakemake (a lent GPU) or in isolation, e.g.
python benchmarks/convergence.py results/data/ml-1m/split/seed123 --config config/config.yaml
    config/experiments/loss_zoo_ml1m.yaml --runs mf:bpr mf:bpr+sr_warm --device cuda --out /tmp/conv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from snakemake.utils import update_config

from specrec.recipes import resolve
from specrec.tables import convergence_table
from specrec.train import RunSpec, TrainSettings, run


def merged_config(paths: list[str]) -> dict:
    """Config files merged key by key, later files winning, exactly as Snakemake merges --configfile."""
    config: dict = {}
    for path in paths:
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    return config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("--config", nargs="+", default=["config/config.yaml"])
    parser.add_argument("--runs", nargs="+", required=True, help="model:recipe pairs")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="run folders and the table go here")
    args = parser.parse_args()
    config = merged_config(args.config)
    settings = TrainSettings.from_config(config["train"] | {"device": args.device})
    dataset = args.split_dir.parent.parent.name
    epochs_files = []
    for pair in args.runs:
        model, recipe = pair.split(":")
        run_dir = args.out / "runs" / dataset / model / recipe / f"seed{args.seed}"
        spec = RunSpec(
            dataset=dataset,
            model=model,
            recipe_name=recipe,
            recipe=resolve(config, recipe),
            seed=args.seed,
            split_dir=args.split_dir,
            run_dir=run_dir,
            settings=settings,
            threads=args.threads,
            model_options=config.get("model_options", {}).get(model, {}),
            checkpoint_dir=args.out / "checkpoints" / model / recipe,
        )
        metrics = run(spec)
        print(f"{pair}: test NDCG@20 {metrics['test']['ndcg@20']:.4f}, best epoch {metrics['best_epoch']}")
        epochs_files.append(run_dir / "epochs.csv")
    convergence_table(epochs_files, args.out / "convergence.csv", args.out / "convergence.md")
    print((args.out / "convergence.md").read_text())


if __name__ == "__main__":
    main()
