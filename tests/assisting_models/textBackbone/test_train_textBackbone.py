"""MLM pretraining on the one Trainer: it learns the caption language (held-out loss down, masked-token
accuracy above the most-frequent-token reference), resumes to the weights of an uninterrupted run, and the
script and the CLI command run it."""

from __future__ import annotations

import json

import pytest
import torch

from poseembroider.assisting_models.textBackbone.model_mlm import MaskedLanguageModel
from poseembroider.assisting_models.textBackbone.model_textBackbone import (
    TEXT_BACKBONE_PRESETS,
    TextBackboneConfig,
    get_text_backbone,
)
from poseembroider.assisting_models.textBackbone.train_textBackbone import main, pretrain_backbone
from poseembroider.models.parameters import count_parameters
from poseembroider.models.pretrained import WEIGHTS_NAME, load_state_dict_file
from poseembroider.text.tokenization import load_tokenizer
from poseembroider.training.trainer import Trainer


def test_mlm_pretraining_learns_the_caption_language(pretrained):
    folder, report = pretrained
    assert report.initial_val_loss > 5.5  # ~ log(vocabulary size) at initialisation
    assert report.val_loss < report.initial_val_loss - 1.5
    assert report.val_accuracy > 30 * report.chance_accuracy
    assert report.val_accuracy > report.unigram_accuracy + 0.03  # better than always answering "the"
    assert report.n_backbone_parameters == count_parameters(MaskedLanguageModel.from_pretrained(folder).distilbert)
    metrics = json.loads((folder / "pretraining_metrics.json").read_text())
    assert metrics["val_loss"] == pytest.approx(report.val_loss)


def test_pretraining_runs_on_the_trainer(pretrained, isolated_config):
    """The run folder is the Trainer's (checkpoints, log, schedule stepped per step), and the report's
    numbers are the Trainer's validation metrics."""
    folder, report = pretrained
    run = isolated_config["GENERAL_EXP_OUTPUT_DIR"] / "textBackbone" / folder.name
    assert (run / "last" / "training_state.pt").is_file() and (run / "best" / "tokenizer.json").is_file()
    assert report.steps == 800 and [h["step"] for h in report.history] == [0, 800]
    epochs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["kind"] == "epoch"]
    assert len(epochs) == 10 and epochs[-1]["step"] == 800  # 10 epochs of 80 steps (passes of 9 batches)
    assert epochs[-1]["val/loss"] == pytest.approx(report.val_loss)
    assert epochs[-1]["val/unigram_accuracy"] == pytest.approx(report.unigram_accuracy)
    lrs = [e["lr"] for e in epochs]  # at each epoch start: warm-up, then linear decay, stepped every step
    assert lrs[0] < lrs[1] and lrs[1:] == sorted(lrs[1:], reverse=True) and lrs[-1] < 0.2 * lrs[1]
    assert epochs[0]["train/loss"] > epochs[-1]["train/loss"]


def test_resumed_pretraining_ends_with_the_weights_of_an_uninterrupted_run(
    caption_corpus, wordpiece_dir, tmp_path, monkeypatch
):
    tokenizer = load_tokenizer(wordpiece_dir)
    config = TextBackboneConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32)
    common = {"steps": 6, "batch_size": 16, "val_every": 3, "config": config, "progress": False, "num_threads": 1}
    whole = pretrain_backbone(caption_corpus, tokenizer, tmp_path / "whole", run_dir=tmp_path / "run_whole", **common)

    run_epoch = Trainer._run_epoch

    def stop_after_first_epoch(self: Trainer, epoch: int) -> None:
        run_epoch(self, epoch)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain_backbone(caption_corpus, tokenizer, tmp_path / "cut", run_dir=tmp_path / "run_cut", **common)
    monkeypatch.undo()
    resumed = pretrain_backbone(
        caption_corpus, tokenizer, tmp_path / "cut", run_dir=tmp_path / "run_cut", resume=True, **common
    )
    assert whole.steps == resumed.steps == 6 and [h["step"] for h in resumed.history] == [0, 3, 6]
    assert resumed.history == whole.history  # the run's validations, read from its log (the cut run's included)
    expected, got = load_state_dict_file(tmp_path / "whole" / WEIGHTS_NAME), load_state_dict_file(
        tmp_path / "cut" / WEIGHTS_NAME
    )
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6, msg=name)
    assert resumed.val_loss == pytest.approx(whole.val_loss, abs=1e-5)


@pytest.mark.slow
def test_longer_mlm_pretraining_uses_the_context(caption_corpus, wordpiece_dir, tmp_path):
    """Beyond the most-frequent-token baseline: the model reads the words around the mask."""
    config = TextBackboneConfig(
        dim=64, n_layers=2, n_heads=4, hidden_dim=256, max_position_embeddings=64, dropout=0.0, attention_dropout=0.0
    )
    report = pretrain_backbone(
        caption_corpus,
        load_tokenizer(wordpiece_dir),
        tmp_path / "mlm",
        steps=1500,
        batch_size=32,
        seed=0,
        config=config,
        lr=2e-3,
        val_fraction=0.15,
        progress=False,
        num_threads=1,
    )
    assert report.val_accuracy > report.unigram_accuracy + 0.1


def test_cli_pretrain_backbone(tmp_path, caption_corpus, wordpiece_dir, capsys):
    from poseembroider.cli import main as cli_main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(caption_corpus[:40]) + "\n")
    out = tmp_path / "backbone"
    args = ["text", "pretrain-backbone", "--tokenizer", str(wordpiece_dir), "--out", str(out), "--corpus", str(corpus)]
    assert cli_main([*args, "--size", "tiny", "--steps", "2", "--batch-size", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert get_text_backbone(out).hidden_size == TEXT_BACKBONE_PRESETS["tiny"].dim
    assert cli_main([*args[:3], str(tmp_path / "no_tokenizer"), *args[4:]]) == 2


def test_script_main_prints_the_report(tmp_path, caption_corpus, wordpiece_dir, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(caption_corpus[:40]) + "\n")
    argv = ["--tokenizer", str(wordpiece_dir), "--out", str(tmp_path / "backbone"), "--corpus", str(corpus),
            "--size", "tiny", "--steps", "3", "--batch-size", "8", "--run-dir", str(tmp_path / "run")]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 3 and report["n_train_texts"] == 38 and report["n_val_texts"] == 2
    assert main([*argv, "--out", str(tmp_path / "backbone2")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("text backbone (tiny, ") and "masked-token accuracy" in printed
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()
    assert main([*argv[:5], str(tmp_path / "missing.txt"), *argv[6:]]) == 2
