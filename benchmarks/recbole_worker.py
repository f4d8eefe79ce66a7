"""Train and evaluate one RecBole 1.2.1 model on a given train/valid/test split, timing every epoch.

Runs inside RecBole's own environment (see versus_recbole.py, which starts it) and imports nothing from
specrec. Prints one JSON object on the last line of stdout:
{"epoch_seconds": [...], "eval_seconds": s, "recall@20": r, "ndcg@20": n, "n_users": u, "n_items": i}.

python recbole_worker.py DATA_DIR DATASET --model BPR --epochs 5 --lr 0.001 --threads 2
DATA_DIR/DATASET holds DATASET.{train,valid,test}.inter (RecBole atomic files, user_id:token item_id:token).
"""

from __future__ import annotations

import argparse
import json
import logging
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir")
    parser.add_argument("dataset")
    parser.add_argument("--model", required=True, choices=["BPR", "LightGCN"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_seed

    torch.set_num_threads(args.threads)
    config = Config(model=args.model, dataset=args.dataset, config_dict=recbole_config(args))
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    # RecBole's eval batch counts score entries: users x items scores every test user in one block
    config["eval_batch_size"] = dataset.user_num * dataset.item_num
    train_data, _, test_data = data_preparation(config, dataset)
    model = get_model(args.model)(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    epoch_seconds = []
    for epoch in range(args.epochs):
        synchronize(args.device)
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        synchronize(args.device)
        epoch_seconds.append(time.perf_counter() - start)
        print(f"recbole {args.model} epoch {epoch + 1}: {epoch_seconds[-1]:.2f} s", flush=True)
    start = time.perf_counter()
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    synchronize(args.device)
    eval_seconds = time.perf_counter() - start
    summary = {
        "epoch_seconds": epoch_seconds,
        "eval_seconds": eval_seconds,
        "recall@20": float(result["recall@20"]),
        "ndcg@20": float(result["ndcg@20"]),
        # RecBole counts a padding id 0 in both
        "n_users": dataset.user_num - 1,
        "n_items": dataset.item_num - 1,
    }
    print(json.dumps(summary))


def recbole_config(args) -> dict:
    """The same protocol as specrec's side: our split files, d 64, batch 4,096, one uniform negative."""
    return {
        "data_path": args.data_dir,
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        "embedding_size": 64,
        "n_layers": 3,
        "reg_weight": 0.0,  # specrec's BPR recipe has no L2 term; RecBole's LightGCN default is 1e-5
        "train_batch_size": 4096,
        "learning_rate": args.lr,
        "epochs": args.epochs,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "NDCG@20",
        "eval_batch_size": 4096,  # replaced by users x items once the dataset is loaded
        "device": args.device,
        "use_gpu": args.device != "cpu",
        "seed": args.seed,
        "reproducibility": True,
        "worker": 0,
        "show_progress": False,
        "metric_decimal_place": 6,
        "state": "WARNING",
        "checkpoint_dir": args.data_dir,
        "save_dataset": False,
        "save_dataloaders": False,
    }


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
