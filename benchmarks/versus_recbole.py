"""specrec side by side with RecBole 1.2.1: seconds per training epoch, seconds per full-ranking test
evaluation, and the test Recall@20 / NDCG@20 both reach after the same epochs, so speed is never bought with
quality.

python benchmarks/versus_recbole.py results/data/ml-1m/split/seed123 results/data/gowalla/split/seed123

Both train on the same split files (RecBole reads them as benchmark files, so neither splits again), with
d 64, batch 4,096, one uniform negative per positive, BPR loss without an L2 term, Adam at the same learning
rate, the same number of epochs and the same CPU threads, measured in one run. The test evaluation ranks all
items for every test user with training and validation items masked; RecBole's `eval_batch_size` counts
score entries, so it is set to users x items (one block), its fastest setting. RecBole runs in its own
virtual environment (`--recbole-env`, created on first use: RecBole 1.2.1 needs numpy<2, pandas<3,
scipy<1.12 and a setuptools that still ships pkg_resources), with the same torch version as specrec.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import pandas as pd
import torch

from specrec.evaluate import scored_rank_metrics
from specrec.io import write_csv
from specrec.models import MODELS
from specrec.recipes import Recipe, resolve_recipe
from specrec.runtime import keep_freed_memory
from specrec.train import TrainSettings, load_data, make_optimizer, model_scorer, train_epoch

HERE = Path(__file__).resolve().parent
RECBOLE_REQUIREMENTS = ["recbole==1.2.1", "setuptools>=77.0.3,<81", "numpy<2", "pandas<3", "scipy<1.12"]
RECBOLE_MODELS = {"mf": "BPR", "lightgcn": "LightGCN"}
BPR = {"loss": "bpr", "n_negatives": 1, "sampler": "uniform"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dirs", nargs="+", type=Path)
    parser.add_argument("--models", nargs="+", default=["mf", "lightgcn"], choices=sorted(RECBOLE_MODELS))
    parser.add_argument(
        "--epochs",
        nargs="+",
        default=["mf=20", "lightgcn=3"],
        help="epochs per model, MODEL=N (RecBole's LightGCN takes minutes per epoch on a CPU)",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020], help="a run of each tool per seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recbole-env", type=Path, default=HERE / ".recbole-env")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args()
    epochs = {model: int(n) for model, n in (pair.split("=") for pair in args.epochs)}
    python = recbole_python(args.recbole_env)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as a training job does
    print(f"torch {torch.__version__}, {args.threads} CPU threads, lr {args.lr}, epochs {epochs}", flush=True)
    rows = []
    for split_dir in args.split_dirs:
        with tempfile.TemporaryDirectory() as data_dir:
            name = write_atomic_files(split_dir, Path(data_dir))
            for model in args.models:
                protocol = (epochs[model], args.lr, args.threads)
                runs = {"RecBole": [], "specrec": []}
                for seed in args.seeds:
                    runs["RecBole"].append(run_recbole(python, data_dir, name, model, *protocol, seed))
                    runs["specrec"].append(run_specrec(split_dir, model, *protocol, seed))
                    common = {"split": str(split_dir), "model": model, "epochs": epochs[model], "seed": seed}
                    rows += [common | {"tool": tool} | results[-1] for tool, results in runs.items()]
                print_comparison(split_dir, model, runs)
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows))


def recbole_python(env: Path) -> Path:
    """The Python of RecBole's own environment, created (and its packages installed) on first use."""
    python = env / "bin" / "python"
    marker = env / "installed.txt"
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    wanted = "\n".join([*RECBOLE_REQUIREMENTS, torch_pin])
    if marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing RecBole 1.2.1 into {env} (once)", flush=True)
    venv.create(env, with_pip=True, clear=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *RECBOLE_REQUIREMENTS, torch_pin], check=True)
    marker.write_text(wanted)
    return python


def write_atomic_files(split_dir: Path, out: Path) -> str:
    """The split as RecBole benchmark files NAME.{train,valid,test}.inter in out/NAME; returns NAME."""
    name = "split"
    (out / name).mkdir(parents=True)
    for part in ("train", "valid", "test"):
        frame = pd.read_parquet(split_dir / f"{part}.parquet", columns=["user", "item"])
        frame.columns = ["user_id:token", "item_id:token"]
        frame.to_csv(out / name / f"{name}.{part}.inter", sep="\t", index=False)
    return name


def run_recbole(
    python: Path, data_dir: str, name: str, model: str, epochs: int, lr: float, threads: int, seed: int
) -> dict:
    command = [python, HERE / "recbole_worker.py", data_dir, name, "--model", RECBOLE_MODELS[model]]
    command += ["--epochs", str(epochs), "--lr", str(lr), "--threads", str(threads), "--seed", str(seed)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=data_dir)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome(summary["epoch_seconds"], summary["eval_seconds"], summary)


def run_specrec(split_dir: Path, model_name: str, epochs: int, lr: float, threads: int, seed: int) -> dict:
    """The same protocol through specrec's own training step and evaluation."""
    torch.manual_seed(seed)
    data = load_data(split_dir, "cpu")
    settings = TrainSettings(lr=lr, batch_size=4096, dim=64, device="cpu")
    users, items = data.train.pairs()
    options = {"n_layers": 3, "layer_combination": "mean"} if model_name == "lightgcn" else {}
    model = MODELS[model_name](
        data.split.n_users, data.split.n_items, dim=64, train_users=users, train_items=items, **options
    )
    recbole_init(model, model_name, data.split.n_users)
    recipe = Recipe.from_resolved(resolve_recipe("bpr", {"bpr": BPR}, {}))
    optimizer = make_optimizer(model, recipe, settings)
    generator = torch.Generator().manual_seed(seed)
    epoch_seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        train_epoch(model, recipe, optimizer, data, settings, generator)
        epoch_seconds.append(time.perf_counter() - start)
        print(f"specrec {model_name} epoch {epoch + 1}: {epoch_seconds[-1]:.2f} s", flush=True)
    start = time.perf_counter()
    with torch.no_grad():
        metrics = scored_rank_metrics(
            model_scorer(model), data.test, [data.train, data.valid], ks=[20], batch_size=1024
        )
    return outcome(epoch_seconds, time.perf_counter() - start, metrics)


def recbole_init(model, model_name: str, n_users: int) -> None:
    """RecBole's initialisation: xavier_normal_ on each table, N(0, 2 / (rows + d)). The first epochs
    depend on it (specrec's default N(0, 0.1^2) starts slower at this learning rate)."""
    with torch.no_grad():
        if model_name == "lightgcn":
            tables = [model.embedding.weight[:n_users], model.embedding.weight[n_users:]]
        else:
            tables = [model.user.weight, model.item.weight]
        for table in tables:
            table.normal_(0.0, (2.0 / (table.shape[0] + table.shape[1])) ** 0.5)


def outcome(epoch_seconds: list[float], eval_seconds: float, metrics: dict) -> dict:
    # the first epoch also pays one-off costs (RecBole builds its sampler, specrec its membership bitmap)
    steady = epoch_seconds[1:] or epoch_seconds
    return {
        "epoch_seconds": sum(steady) / len(steady),
        "first_epoch_seconds": epoch_seconds[0],
        "eval_seconds": eval_seconds,
        "recall@20": metrics["recall@20"],
        "ndcg@20": metrics["ndcg@20"],
    }


def print_comparison(split_dir: Path, model: str, runs: dict[str, list[dict]]) -> None:
    """Means over seeds (± the standard deviation of the metrics with several seeds) and the speed-ups."""
    means = {tool: pd.DataFrame(results).mean() for tool, results in runs.items()}
    spread = {tool: pd.DataFrame(results).std(ddof=1) for tool, results in runs.items()}
    lines = [f"\n{split_dir} {model}-BPR, {len(runs['specrec'])} seed(s)"]
    lines.append(f"{'':<10} {'s/epoch':>8} {'s/eval':>7} {'Recall@20':>16} {'NDCG@20':>16}")
    for tool, mean in means.items():
        metrics = [
            f"{mean[name]:.4f}" + (f" ± {spread[tool][name]:.4f}" if len(runs[tool]) > 1 else "")
            for name in ("recall@20", "ndcg@20")
        ]
        lines.append(
            f"{tool:<10} {mean['epoch_seconds']:>8.3f} {mean['eval_seconds']:>7.3f} "
            f"{metrics[0]:>16} {metrics[1]:>16}"
        )
    ratio = {key: means["RecBole"][key] / means["specrec"][key] for key in ("epoch_seconds", "eval_seconds")}
    lines.append(f"{'speed-up':<10} {ratio['epoch_seconds']:>7.1f}x {ratio['eval_seconds']:>6.1f}x")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
