"""Text encoding throughput: specrec's `encode_texts` against a bare `SentenceTransformer.encode` of the same
item texts with the same model, batch size and device (best of `--repeats` runs each, in alternating order).

python benchmarks/text_encoding.py results/data/ml-1m/items.parquet --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specrec.io import write_csv
from specrec.text.encode import DEFAULT_MODEL, encode_texts, item_texts, load_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("items", type=Path, help="a prepared items.parquet")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts, _ = item_texts(pd.read_parquet(args.items))
    model = load_model(args.model, args.device)
    runs = {
        "sentence-transformers": lambda: model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
        ),
        "specrec": lambda: encode_texts(model, texts, batch_size=args.batch_size, progress=False),
    }
    best = {name: float("inf") for name in runs}
    outputs = {}
    for repeat in range(args.repeats):
        # alternating order (ABBA...): on a shared machine the later run of a pair tends to be slower
        for name, encode in list(runs.items())[:: 1 if repeat % 2 == 0 else -1]:
            start = time.perf_counter()
            outputs[name] = encode()
            best[name] = min(best[name], time.perf_counter() - start)
    # the same vectors, or the comparison would mean nothing
    gap = float(np.abs(outputs["specrec"] - outputs["sentence-transformers"]).max())
    print(f"{len(texts)} texts from {args.items}, {args.model} on {args.device}, {args.threads} threads")
    print(f"{'encoder':<24} {'seconds':>8} {'items/s':>8}")
    rows = []
    for name, seconds in best.items():
        print(f"{name:<24} {seconds:>8.2f} {len(texts) / seconds:>8.1f}")
        rows.append(
            {"encoder": name, "items": len(texts), "seconds": seconds, "items_per_s": len(texts) / seconds}
        )
    print(
        f"specrec / sentence-transformers time: {best['specrec'] / best['sentence-transformers']:.3f}; "
        f"largest difference of the vectors {gap:.1e}"
    )
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows).assign(max_abs_difference=gap))


if __name__ == "__main__":
    main()
