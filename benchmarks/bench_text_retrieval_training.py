"""PoseText / PairText training samples/s at the quickstart's size: whole steps, data loading included.

Steps as the Trainer runs them (DataLoader over items tokenized on the fly, forward, symBBC, backward, Adam) at
batch 128, latentD 128, one text-transformer layer, over the tiny text backbone (random weights: speed does not
depend on them; WordPiece tokenizer trained on the captions), on captions / instructions of our captioner.
Four settings, in the same process:

- baseline: the code before this benchmark: each batch padded to its longest text in one call, and
  `--transformer_dropout 0.1` (the recipe's, which the quickstart kept): dropout inside attention sends
  PyTorch's CPU attention to its slow unfused path;
- chunked: length-sorted chunks of at most `CHUNK_TOKENS` padded tokens (`TransformerTextEncoder.forward`,
  same outputs and gradients), dropout 0.1;
- chunked_nodropout: and `--transformer_dropout 0`;
- ours: and `--num_workers 1`: the DataLoader worker tokenizes and runs the frozen backbone
  (`poseText.data.loader_backbone`) beside the training process.

Figures: wall-clock samples/s, and the training process's own CPU milliseconds per sample (the worker's not
counted: what the second core takes over). One torch thread. On a machine shared with other processes wall
times move with the load; the CPU times and the single-process ratios are the stable figures.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from bench_text_retrieval import save_backbone
from common import write_result
from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.assisting_models.poseText.data import loader_backbone, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.datasets.synthetic.caption_corpus import build_caption_corpus

BATCH = 128
N_TEXTS = 896  # 7 batches: captions of 299 poses, instructions of the first pairs
BATCHES = 6  # timed batches per setting, after one untimed
QUICKSTART_SIZE = {"latentD": 128, "transformer_layers": 1, "transformer_ff": 256}
SETTINGS = {  # name: (chunk_tokens (0: one padded call), transformer_dropout, num_workers)
    "baseline": (0, 0.1, 0),
    "chunked": (None, 0.1, 0),
    "chunked_nodropout": (None, 0.0, 0),
    "ours": (None, 0.0, 1),
}


class TextItems(Dataset):
    """Random poses with one text each, tokenized when the item is read (as the registry datasets do)."""

    def __init__(self, texts: list[str], tokenizer, pairs: bool) -> None:
        self.texts, self.tokenizer, self.pairs = texts, tokenizer, pairs
        self.poses = 0.3 * torch.randn(len(texts), 2, 22, 3, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict:
        tokens = self.tokenizer(self.texts[index])
        item = {"texts_tokens": tokens, "texts_lengths": int(tokens.numel())}
        if self.pairs:
            return {**item, "poses_A": self.poses[index, 0], "poses_B": self.poses[index, 1]}
        return {**item, "poses": self.poses[index, 0]}


def samples_per_s(model_class, config_class, backbone_dir: str, texts: list[str], setting: tuple) -> dict:
    """Wall samples/s and the main process's CPU ms per sample of `BATCHES` training steps."""
    chunk_tokens, dropout, workers = setting
    torch.manual_seed(0)
    model = model_class(config_class(text_encoder_name=backbone_dir, transformer_dropout=dropout, **QUICKSTART_SIZE))
    if chunk_tokens is not None:
        model.text_encoder.chunk_tokens = chunk_tokens
    tokenizer = model.text_encoder.tokenizer
    dataset = TextItems(texts, tokenizer, pairs=model_class is PairText)
    collate = text_collate_fn(tokenizer, loader_backbone(model, workers, "cpu"))
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, drop_last=True, collate_fn=collate, num_workers=workers
    )
    optimizer = torch.optim.Adam(model.param_groups(1e-3, 0.0)[0]["params"], lr=1e-3)
    model.train()

    def step(batch: dict) -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    batches = iter(loader)  # BATCHES + 1 <= batches per epoch: one pass, loading included in the timing
    step(next(batches))  # the first batch waits for the worker to start: not timed
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(BATCHES):
        step(next(batches))
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    return {"samples_per_s": BATCHES * BATCH / wall, "cpu_ms_per_sample": 1e3 * cpu / (BATCHES * BATCH)}


def main() -> None:
    torch.set_num_threads(1)
    captions = build_caption_corpus(n_poses=N_TEXTS // 3 + 1, n_pairs=0, seed=0)[:N_TEXTS]
    instructions = build_caption_corpus(n_poses=0, n_pairs=N_TEXTS // 2, seed=0)[:N_TEXTS]  # a few are empty
    corpus = captions + instructions
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tiny = save_backbone(corpus, "tiny", Path(tmp))
        for name, model_class, config_class, texts in (
            ("posetext", PoseText, PoseTextConfig, captions),
            ("pairtext", PairText, PairTextConfig, instructions),
        ):
            for setting_name, setting in SETTINGS.items():
                results[f"{name}_{setting_name}"] = samples_per_s(model_class, config_class, tiny, texts, setting)
    out: dict = {
        "threads": 1,
        "batch": BATCH,
        "ours": "length-sorted chunks of <= 1024 padded tokens, --transformer_dropout 0, --num_workers 1 "
        "(the worker tokenizes and runs the frozen backbone)",
        "baseline": "one padded call per batch, --transformer_dropout 0.1, tokenizer and backbone in the "
        "training process (the quickstart's PoseText / PairText steps before)",
    }
    for model_name in ("posetext", "pairtext"):
        base = results[f"{model_name}_baseline"]
        for setting_name in SETTINGS:
            r = results[f"{model_name}_{setting_name}"]
            out[f"{model_name}_{setting_name}"] = {
                "samples_per_s": round(r["samples_per_s"], 1),
                "cpu_ms_per_sample": round(r["cpu_ms_per_sample"], 2),
            }
        ours = results[f"{model_name}_ours"]
        out[f"{model_name}_ratio_wall"] = ours["samples_per_s"] / base["samples_per_s"]
        out[f"{model_name}_ratio_cpu"] = base["cpu_ms_per_sample"] / ours["cpu_ms_per_sample"]
    out["mean_caption_chars"] = sum(map(len, captions)) / len(captions)
    out["mean_instruction_chars"] = sum(map(len, instructions)) / len(instructions)
    write_result("text_retrieval_training", out)


if __name__ == "__main__":
    main()
