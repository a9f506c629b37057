"""A fake release of the original PoseEmbroider, made offline: random weights in the original's key layout,
shapes and dict format (released_checkpoints.md), at tiny widths.

    <root>/shortname_2_model_path.json                     relative paths as in the repository file
    <root>/pretrained_models/<shortname>/checkpoint_release[_noencoderweights].pth
    <root>/huggingface_models/distilbert-base-uncased/     AutoModel.save_pretrained + tokenizer files
    <root>/torch_models/smplerx/smpler_x_b32.pth.tar       {'epoch', 'network', 'optimizer'}, ViT under module.encoder.

Every checkpoint is `torch.save({epoch, model, optimizer, scheduler, args: argparse.Namespace,
best_score | best_val_loss})`. State dicts are written key by key here from the reference's layer tables, never
by our model classes, so that the importer is tested against the layout, not against itself. The DistilBERT
folder's own weights differ from the copy inside the PoseText / PairText files on purpose: the copy must win.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

SHORTNAMES = {
    "posevae_model_bedlamscript": ("PoseVAE", "checkpoint_release.pth"),
    "posetext_model_bedlamscript": ("PoseText", "checkpoint_release.pth"),
    "pairtext_model_ft_bedlamfix_posefix": ("PairText", "checkpoint_release.pth"),
    "poseembroider_model_bedlamscript": ("PoseEmbroider", "checkpoint_release_noencoderweights.pth"),
    "aligner_model_bedlamscript": ("Aligner", "checkpoint_release_noencoderweights.pth"),
    "hpsestimator_model_poseembroider_bedlamscript": ("HPSEstimator", "checkpoint_release.pth"),
    "hpsestimator_model_aligner_bedlamscript": ("HPSEstimator", "checkpoint_release.pth"),
    "instructgen_model_poseembroider_bedlamfix_posefix": ("InstructionGenerator", "checkpoint_release.pth"),
    "instructgen_model_aligner_bedlamfix_posefix": ("InstructionGenerator", "checkpoint_release.pth"),
}
MODALITIES = ("image", "pose", "text")


@dataclass(frozen=True)
class Sizes:
    """Widths of the fake release (the real ones in comments)."""

    joints: int = 22
    vae_latent: int = 8  # 32
    neurons: int = 32  # 512 (VPoser trunk)
    mini: int = 8  # 32 (retrieval bottleneck)
    text_latent: int = 16  # 512
    text_layers: int = 2  # 4
    text_ff: int = 32  # 1024
    bert_dim: int = 32  # 768
    bert_layers: int = 1  # 6
    bert_heads: int = 2  # 12
    bert_hidden: int = 64  # 3072
    bert_positions: int = 128  # 512
    bert_vocab: int = 0  # 30522 (0: the small BERT-layout vocabulary of text_fixtures, ~170 tokens)
    vit_width: int = 128  # 768 (heads = width / 64)
    vit_depth: int = 1  # 12
    vit_tokens: int = 31  # 31
    patch: int = 16  # 16
    core_latent: int = 16  # 512
    core_width: int = 8  # 256
    core_ff: int = 16  # 512
    hps_hidden: int = 32  # 1024
    shape_coeffs: int = 10  # 10
    decoder_latent: int = 16  # 512
    decoder_heads: int = 2  # 8
    decoder_layers: int = 2  # 4
    decoder_ff: int = 32  # 1024
    pe_len: int = 5000  # 5000


FULL_SIZES = Sizes(
    vae_latent=32,
    neurons=512,
    mini=32,
    text_latent=512,
    text_layers=4,
    text_ff=1024,
    bert_dim=768,
    bert_layers=6,
    bert_heads=12,
    bert_hidden=3072,
    bert_positions=512,
    bert_vocab=30522,
    vit_width=768,
    vit_depth=12,
    core_latent=512,
    core_width=256,
    core_ff=512,
    hps_hidden=1024,
    decoder_latent=512,
    decoder_heads=8,
    decoder_layers=4,
    decoder_ff=1024,
)
"""The real release's widths (released_checkpoints.md §3): ~1.6 GB of files, for timing the import."""


class _Weights:
    """Seeded random tensors of the kinds a trained model holds."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)

    def randn(self, *shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen) * scale

    def linear(self, state: dict, prefix: str, n_in: int, n_out: int) -> None:
        state[f"{prefix}.weight"] = self.randn(n_out, n_in, scale=1.0 / math.sqrt(n_in))
        state[f"{prefix}.bias"] = self.randn(n_out, scale=0.1)

    def norm(self, state: dict, prefix: str, dim: int) -> None:
        state[f"{prefix}.weight"] = 1.0 + self.randn(dim, scale=0.1)
        state[f"{prefix}.bias"] = self.randn(dim, scale=0.1)

    def batchnorm(self, state: dict, prefix: str, dim: int) -> None:
        self.norm(state, prefix, dim)
        state[f"{prefix}.running_mean"] = self.randn(dim, scale=0.2)
        state[f"{prefix}.running_var"] = 0.5 + torch.rand(dim, generator=self.gen)
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(1234, dtype=torch.int64)

    def encoder_layer(self, state: dict, prefix: str, d: int, ff: int, attention: str = "self_attn") -> None:
        """One nn.TransformerEncoderLayer: packed [q; k; v] in-projection, out-projection, FFN, two norms."""
        state[f"{prefix}.{attention}.in_proj_weight"] = self.randn(3 * d, d, scale=1.0 / math.sqrt(d))
        state[f"{prefix}.{attention}.in_proj_bias"] = self.randn(3 * d, scale=0.1)
        self.linear(state, f"{prefix}.{attention}.out_proj", d, d)
        self.linear(state, f"{prefix}.linear1", d, ff)
        self.linear(state, f"{prefix}.linear2", ff, d)
        self.norm(state, f"{prefix}.norm1", d)
        self.norm(state, f"{prefix}.norm2", d)

    def decoder_layer(self, state: dict, prefix: str, d: int, ff: int) -> None:
        """One nn.TransformerDecoderLayer: self- and cross-attention (packed), FFN, three norms."""
        self.encoder_layer(state, prefix, d, ff)
        state[f"{prefix}.multihead_attn.in_proj_weight"] = self.randn(3 * d, d, scale=1.0 / math.sqrt(d))
        state[f"{prefix}.multihead_attn.in_proj_bias"] = self.randn(3 * d, scale=0.1)
        self.linear(state, f"{prefix}.multihead_attn.out_proj", d, d)
        self.norm(state, f"{prefix}.norm3", d)


def sinusoid_table(max_len: int, d: int) -> torch.Tensor:
    """(max_len, 1, d): the original's sequence-first `PositionalEncoding.pe` buffer."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe.unsqueeze(1)


def vposer_trunk(w: _Weights, state: dict, prefix: str, s: Sizes) -> None:
    """Encoder layers 1, 2, 4, 6, 7 (BatchNorm(66), Linear 66->N, BatchNorm(N), Linear N->N twice)."""
    w.batchnorm(state, f"{prefix}.1", 3 * s.joints)
    w.linear(state, f"{prefix}.2", 3 * s.joints, s.neurons)
    w.batchnorm(state, f"{prefix}.4", s.neurons)
    w.linear(state, f"{prefix}.6", s.neurons, s.neurons)
    w.linear(state, f"{prefix}.7", s.neurons, s.neurons)


def distilbert_state(w: _Weights, s: Sizes, vocab_size: int) -> OrderedDict:
    """A DistilBertModel state dict (no prefix), as `AutoModel` holds it."""
    state: OrderedDict = OrderedDict()
    state["embeddings.word_embeddings.weight"] = w.randn(vocab_size, s.bert_dim, scale=0.5)
    state["embeddings.position_embeddings.weight"] = w.randn(s.bert_positions, s.bert_dim, scale=0.5)
    w.norm(state, "embeddings.LayerNorm", s.bert_dim)
    for i in range(s.bert_layers):
        p = f"transformer.layer.{i}"
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            w.linear(state, f"{p}.attention.{name}", s.bert_dim, s.bert_dim)
        w.norm(state, f"{p}.sa_layer_norm", s.bert_dim)
        w.linear(state, f"{p}.ffn.lin1", s.bert_dim, s.bert_hidden)
        w.linear(state, f"{p}.ffn.lin2", s.bert_hidden, s.bert_dim)
        w.norm(state, f"{p}.output_layer_norm", s.bert_dim)
    return state


def vit_state(w: _Weights, s: Sizes) -> OrderedDict:
    """SMPLer-X ViT keys (prefix-free), 256x192 crops in 16-pixel patches with padding 2 (16 x 12 patches)."""
    state: OrderedDict = OrderedDict()
    d = s.vit_width
    state["task_tokens"] = w.randn(1, s.vit_tokens, d, scale=0.1)
    state["pos_embed"] = w.randn(1, 16 * 12 + 1, d, scale=0.1)
    state["patch_embed.proj.weight"] = w.randn(d, 3, s.patch, s.patch, scale=1.0 / math.sqrt(3 * s.patch**2))
    state["patch_embed.proj.bias"] = w.randn(d, scale=0.1)
    for i in range(s.vit_depth):
        p = f"blocks.{i}"
        w.norm(state, f"{p}.norm1", d)
        w.linear(state, f"{p}.attn.qkv", d, 3 * d)
        w.linear(state, f"{p}.attn.proj", d, d)
        w.norm(state, f"{p}.norm2", d)
        w.linear(state, f"{p}.mlp.fc1", d, 4 * d)
        w.linear(state, f"{p}.mlp.fc2", 4 * d, d)
    w.norm(state, "last_norm", d)
    return state


def text_side_state(w: _Weights, s: Sizes, bert: OrderedDict, position_ids: bool) -> OrderedDict:
    """PoseText's state dict (PairText adds `pose_mlp`): pose branch, DistilBERT copy, text transformer."""
    state: OrderedDict = OrderedDict()
    state["loss_weight"] = torch.tensor([12.5])
    vposer_trunk(w, state, "pose_encoder.encoder", s)
    w.linear(state, "pose_encoder.encoder.8", s.neurons, s.mini)
    w.linear(state, "pose_encoder.encoder.10", s.mini, s.text_latent)
    for key, value in bert.items():
        state[f"text_encoder.pretrained_text_encoder.{key}"] = value.clone()
    if position_ids:  # what a file written with transformers < 4.31 holds
        state["text_encoder.pretrained_text_encoder.embeddings.position_ids"] = torch.arange(s.bert_positions)[None]
    w.linear(state, "text_encoder.projection.1", s.bert_dim, s.text_latent)
    state["text_encoder.positional_encoding.pe"] = sinusoid_table(s.pe_len, s.text_latent)
    for i in range(s.text_layers):
        w.encoder_layer(state, f"text_encoder.transformer_encoder.layers.{i}", s.text_latent, s.text_ff)
    return state


def core_state(w: _Weights, s: Sizes, kind: str) -> OrderedDict:
    state: OrderedDict = OrderedDict()
    d = s.core_latent
    if kind == "PoseEmbroider":
        state["intermodality_token"] = w.randn(1, 1, d, scale=0.5)
        for m in MODALITIES:
            state[f"modality_encoding_{m}"] = w.randn(1, 1, d, scale=0.5)
    state["temperature"] = torch.tensor([11.0])
    w.linear(state, "image_encoder.image_projection.0", s.vit_width, d)
    w.linear(state, "pose_encoder.pose_projection.0", s.neurons, d)
    w.linear(state, "text_encoder.text_projection.0", s.text_latent, d)
    if kind == "PoseEmbroider":
        w.linear(state, "embroider_core.0", d, s.core_width)
        w.encoder_layer(state, "embroider_core.1", s.core_width, s.core_ff)
        w.linear(state, "embroider_core.2", s.core_width, d)
        w.norm(state, "norm", d)
        for m in MODALITIES:
            w.linear(state, f"modality_projection_{m}.layers.0", d, d)
            w.linear(state, f"modality_projection_{m}.layers.2", d, d)
    else:
        for m in MODALITIES:
            for i in (0, 2, 5):
                w.linear(state, f"{m}_external_encoder_proj.layers.{i}", d, d)
    return state


def hps_state(w: _Weights, s: Sizes) -> OrderedDict:
    state: OrderedDict = OrderedDict()
    state["pose_prediction_head.init_value"] = w.randn(6 * s.joints, scale=0.5)
    w.linear(state, "pose_prediction_head.regressor_residual.1", s.core_latent + 6 * s.joints, s.hps_hidden)
    w.linear(state, "pose_prediction_head.regressor_residual.4", s.hps_hidden, s.hps_hidden)
    w.linear(state, "pose_prediction_head.regressor_residual.7", s.hps_hidden, 6 * s.joints)
    w.linear(state, "bodyshape_prediction_head.layers.0", s.core_latent, s.core_latent)
    w.linear(state, "bodyshape_prediction_head.layers.2", s.core_latent, s.shape_coeffs)
    return state


def instructgen_state(w: _Weights, s: Sizes, vocab_size: int, eos_bias: float) -> OrderedDict:
    state: OrderedDict = OrderedDict()
    d, both, dec = s.core_latent, 2 * s.core_latent, s.decoder_latent
    state["comparison_module.tirg.a"] = torch.tensor([0.9, 1.2])
    w.batchnorm(state, "comparison_module.tirg.gated_feature_composer.1", both)
    w.linear(state, "comparison_module.tirg.gated_feature_composer.3", both, d)
    w.batchnorm(state, "comparison_module.tirg.res_info_composer.1", both)
    w.linear(state, "comparison_module.tirg.res_info_composer.3", both, both)
    w.linear(state, "comparison_module.tirg.res_info_composer.5", both, d)
    w.linear(state, "modality_input_adapter.encoder_hidden_state_adaptor", d, dec)
    state["text_decoder.embedding.weight"] = w.randn(vocab_size, dec, scale=0.3)
    state["text_decoder.positional_encoding.pe"] = sinusoid_table(s.pe_len, dec)
    w.linear(state, "text_decoder.final_layer", dec, vocab_size)
    state["text_decoder.final_layer.bias"][102] += eos_bias  # [SEP] (EOS) likelier: texts end, at various lengths
    for i in range(s.decoder_layers):
        w.decoder_layer(state, f"text_decoder.transformer_decoder.layers.{i}", dec, s.decoder_ff)
    state["text_decoder.encoder_positional_encoding.pe"] = sinusoid_table(s.pe_len, dec)
    return state


def original_args(kind: str, s: Sizes, **extra) -> argparse.Namespace:
    """A Namespace shaped like `option.get_args_parser()`'s after the trainer's edits (a subset of its fields)."""
    args = dict(
        model=kind,
        dataset="bedlamscript-overlap30_res224_j16_sf11",
        datasets=None,
        latentD=s.text_latent,
        num_body_joints=s.joints,
        text_encoder_name="distilbertUncased",
        transformer_topping="avgp",
        retrieval_loss="symBBC",
        lr=0.0002,
        wd=0.0,
        lr_scheduler="stepLR",
        lr_step=400.0,
        lr_gamma=0.5,
        batch_size=128,
        epochs=500,
        seed=1,
        val_every=20,
        log_step=20,
        apply_LR_augmentation=False,
        pretrained="",
        output_dir=f"/home/authors/experiments/{kind.lower()}/seed1",
        decoder_latentD=768,
        decoder_nhead=4,
        dataset_weight_balance=None,
    )
    args.update(extra)
    return argparse.Namespace(**args)


def _save_checkpoint(path: Path, state: OrderedDict, args: argparse.Namespace, score_key: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = {"state": {}, "param_groups": [{"lr": args.lr, "betas": (0.9, 0.999), "params": [0, 1]}]}
    payload = {"epoch": 137, "model": state, "optimizer": optimizer, "scheduler": None, "args": args, score_key: 0.5}
    torch.save(payload, path)
    return path


def write_distilbert_dir(folder: Path, s: Sizes, seed: int) -> tuple[Path, int]:
    """The distilbert-base-uncased folder as the original's README makes it (AutoTokenizer / AutoModel
    save_pretrained), tiny; its own weights are random (`seed`). Returns the folder and the vocabulary size."""
    from transformers import BertTokenizer, DistilBertConfig, DistilBertModel

    from text_fixtures import fake_bert_vocab

    folder.mkdir(parents=True, exist_ok=True)
    vocab = fake_bert_vocab()
    vocab += [f"word{i}" for i in range(max(s.bert_vocab - len(vocab), 0))]  # filler up to the real size
    tokenizer = BertTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, model_max_length=s.bert_positions
    )
    assert len(tokenizer) == len(vocab)  # the vocab_file pitfall would give 5
    tokenizer.save_pretrained(str(folder))
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    config = DistilBertConfig(
        vocab_size=len(vocab),
        dim=s.bert_dim,
        n_layers=s.bert_layers,
        n_heads=s.bert_heads,
        hidden_dim=s.bert_hidden,
        max_position_embeddings=s.bert_positions,
    )
    torch.manual_seed(seed)
    DistilBertModel(config).save_pretrained(str(folder))
    return folder, len(vocab)


def write_fake_release(root: Path, seed: int = 0, s: Sizes = Sizes(), only: tuple[str, ...] | None = None) -> dict:
    """Write the fake release under `root` (every shortname, or those of `only`); returns {shortname: path,
    'distilbert': dir, 'smplerx': file, 'bert': the DistilBERT copy inside the retrieval files}."""
    w = _Weights(seed)
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    distilbert, vocab_size = write_distilbert_dir(root / "huggingface_models" / "distilbert-base-uncased", s, seed + 1)
    out["distilbert"] = distilbert
    bert = distilbert_state(w, s, vocab_size)
    out["bert"] = bert

    network = OrderedDict((f"module.encoder.{k}", v) for k, v in vit_state(w, s).items())
    for head in ("module.body_rotation_net.layer.0", "module.hand_position_net.conv.0", "module.box_net.deconv.0"):
        w.linear(network, head, 8, 4)  # other SMPLer-X heads: no 'backbone.' / 'encoder.' in their names
    smplerx = root / "torch_models" / "smplerx" / "smpler_x_b32.pth.tar"
    smplerx.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 9, "network": network, "optimizer": {"state": {}, "param_groups": []}}, smplerx)
    out["smplerx"] = smplerx

    registry = {}
    for shortname, (kind, file_name) in SHORTNAMES.items():
        if only is not None and shortname not in only:
            continue
        if kind == "PoseVAE":
            state: OrderedDict = OrderedDict()
            vposer_trunk(w, state, "pose_encoder.encoder", s)
            w.linear(state, "pose_encoder.encoder.8.mu", s.neurons, s.vae_latent)
            w.linear(state, "pose_encoder.encoder.8.logvar", s.neurons, s.vae_latent)
            w.linear(state, "pose_decoder.decoder.0", s.vae_latent, s.neurons)
            w.linear(state, "pose_decoder.decoder.3", s.neurons, s.neurons)
            w.linear(state, "pose_decoder.decoder.5", s.neurons, 6 * s.joints)
            for name in ("v2v", "jts", "rot"):
                state[f"decsigma_{name}"] = w.randn(1, scale=0.3)
            args = original_args(kind, s, latentD=s.vae_latent, lr=1e-5, wd=1e-4, wloss_kld=1.0, kld_epsilon=10.0)
            score = "best_val_loss"
        elif kind in ("PoseText", "PairText"):
            state = text_side_state(w, s, bert, position_ids=kind == "PairText")
            if kind == "PairText":
                d = s.text_latent
                w.linear(state, "pose_mlp.1", 2 * d, 2 * d)
                w.linear(state, "pose_mlp.3", 2 * d, d)
                w.linear(state, "pose_mlp.5", d, d)
            args = original_args(kind, s)
            score = "best_score"
        elif kind == "HPSEstimator":
            state = hps_state(w, s)
            core = "poseembroider" if "poseembroider" in shortname else "aligner"
            args = original_args(
                kind,
                s,
                latentD=s.core_latent,
                datasets=["bedlamscript-overlap30_res224_j16_sf11"],
                pretrained_representation_model=f"{core}_model_bedlamscript",
                num_shape_coeffs=s.shape_coeffs,
                predict_bodyshape=True,
                representation_model_input_types=["images"],
                cached_embeddings_file="e137",
                lr=0.0001,
                wd=0.0001,
            )
            score = "best_val_loss"
        elif kind == "InstructionGenerator":
            state = instructgen_state(w, s, vocab_size, eos_bias=4.0 if "poseembroider" in shortname else 0.0)
            core = "poseembroider" if "poseembroider" in shortname else "aligner"
            args = original_args(
                kind,
                s,
                latentD=s.core_latent,
                datasets=["posefix-H", "bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709"],
                pair_kinds=["out", "any"],
                pretrained_representation_model=f"{core}_model_bedlamscript",
                text_decoder_name="transformer_distilbertUncased",
                transformer_mode="crossattention",
                comparison_module_mode="tirg",
                comparison_latentD=s.core_latent,
                decoder_latentD=s.decoder_latent,
                decoder_nhead=s.decoder_heads,
                decoder_nlayers=s.decoder_layers,
                representation_model_input_types=["poses"],
                textret_model="pairtext_model_ft_bedlamfix_posefix",
                cached_embeddings_file="e137",
            )
            score = "best_val_loss"
        else:
            state = core_state(w, s, kind)
            args = original_args(
                kind,
                s,
                latentD=s.core_latent,
                l2normalize=True,
                text_encoder_name="posetext",
                pose_encoder_name="posevae",
                image_encoder_name="smplerx_vitb32",
                encoder_projection_type="layerplus",
                external_encoder_projection_type="none" if kind == "PoseEmbroider" else "mediummlpxs",
                embroider_core_type="transformer",
                no_projection_heads=False,
                single_partials=True,
                dual_partials=True,
                triplet_partial=False,
            )
            score = "best_score"
        out[shortname] = _save_checkpoint(root / "pretrained_models" / shortname / file_name, state, args, score)
        registry[shortname] = f"experiments/pretrained_models/{shortname}/{file_name}"
    (root / "shortname_2_model_path.json").write_text(json.dumps(registry, indent=2))
    return out
