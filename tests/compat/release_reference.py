"""An independent reference of the original's inference, written from the layer tables of the reference
documents (original_system.md §2, released_checkpoints.md §3-4) as plain functions over the release state dicts,
in the original's key names. None of our modules is used: matching it checks the importer's key mapping,
config mapping and our models' computation at once.

Conventions of the original kept here: VPoser's encoder has no activation between layers 6 and 7 and LeakyReLU
slope 0.01; 6D -> matrix by Gram-Schmidt on the two columns of a (3, 2) view; post-norm transformer layers with
GELU and packed [q; k; v]; LayerNorm eps 1e-5 in nn.Transformer layers, 1e-12 in DistilBERT, 1e-6 in the ViT and
the core's final norm; BatchNorm eps 1e-5 with running statistics (eval); 'layerplus' = Linear -> ReLU (dropout
off); image tokens projected one by one, then averaged; the text feature is the average of the transformer outputs
over the real tokens; attention heads: 4 in the text transformer and in the core, width / 64 in the ViT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

State = Mapping[str, torch.Tensor]
MODALITIES = ("image", "pose", "text")
QUERY_TYPES = (  # (query modalities, target): the 9 query types of the evaluation
    (("image",), "pose"),
    (("image",), "text"),
    (("pose",), "image"),
    (("pose",), "text"),
    (("text",), "image"),
    (("text",), "pose"),
    (("image", "pose"), "text"),
    (("pose", "text"), "image"),
    (("image", "text"), "pose"),
)


def linear(sd: State, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return x @ sd[f"{prefix}.weight"].t() + sd[f"{prefix}.bias"]


def layer_norm(sd: State, prefix: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[f"{prefix}.weight"] + sd[f"{prefix}.bias"]


def batch_norm_eval(sd: State, prefix: str, x: torch.Tensor) -> torch.Tensor:
    scale = sd[f"{prefix}.weight"] / torch.sqrt(sd[f"{prefix}.running_var"] + 1e-5)
    return (x - sd[f"{prefix}.running_mean"]) * scale + sd[f"{prefix}.bias"]


def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, Lq, D), (B, Lk, D) x2 -> (B, Lq, D); key_mask (B, Lk) True on real keys."""
    b, lq, d = q.shape
    hd = d // heads
    q = q.view(b, lq, heads, hd).transpose(1, 2)
    k = k.view(b, -1, heads, hd).transpose(1, 2)
    v = v.view(b, -1, heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)  # (B, H, Lq, Lk)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, d)


def packed_self_attention(sd: State, prefix: str, x: torch.Tensor, heads: int, key_mask=None) -> torch.Tensor:
    """nn.MultiheadAttention with in_proj_weight = [W_q; W_k; W_v] and out_proj."""
    q, k, v = (x @ sd[f"{prefix}.in_proj_weight"].t() + sd[f"{prefix}.in_proj_bias"]).chunk(3, dim=-1)
    return linear(sd, f"{prefix}.out_proj", attention(q, k, v, heads, key_mask))


def post_norm_encoder_layer(sd: State, prefix: str, x: torch.Tensor, heads: int, key_mask=None) -> torch.Tensor:
    """nn.TransformerEncoderLayer(activation gelu, norm_first False), eval."""
    x = layer_norm(
        sd, f"{prefix}.norm1", x + packed_self_attention(sd, f"{prefix}.self_attn", x, heads, key_mask), 1e-5
    )
    ff = linear(sd, f"{prefix}.linear2", gelu(linear(sd, f"{prefix}.linear1", x)))
    return layer_norm(sd, f"{prefix}.norm2", x + ff, 1e-5)


def sub(sd: State, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


# ------------------------------------------------------------------------------------------ PoseVAE


def vposer_trunk(sd: State, prefix: str, poses: torch.Tensor) -> torch.Tensor:
    """Encoder layers 0..7: (B, J, 3) -> (B, N)."""
    x = poses.reshape(poses.shape[0], -1)
    x = batch_norm_eval(sd, f"{prefix}.1", x)
    x = F.leaky_relu(linear(sd, f"{prefix}.2", x), 0.01)
    x = batch_norm_eval(sd, f"{prefix}.4", x)  # Dropout (5) off
    return linear(sd, f"{prefix}.7", linear(sd, f"{prefix}.6", x))


def gram_schmidt_6d(x: torch.Tensor) -> torch.Tensor:
    """(B, 6J) -> (B, J, 3, 3): VPoser's ContinousRotReprDecoder (columns of a (3, 2) view)."""
    m = x.reshape(-1, 3, 2)
    b1 = F.normalize(m[:, :, 0], dim=1)
    b2 = F.normalize(m[:, :, 1] - (b1 * m[:, :, 1]).sum(1, keepdim=True) * b1, dim=1)
    b3 = torch.cross(b1, b2, dim=1)
    return torch.stack([b1, b2, b3], dim=-1).reshape(x.shape[0], -1, 3, 3)


def posevae(sd: State, poses: torch.Tensor) -> dict[str, torch.Tensor]:
    """Feature (layer 7), posterior mean and scale, and the rotation matrices decoded from the mean."""
    feature = vposer_trunk(sd, "pose_encoder.encoder", poses)
    mu = linear(sd, "pose_encoder.encoder.8.mu", feature)
    scale = F.softplus(linear(sd, "pose_encoder.encoder.8.logvar", feature))
    h = F.leaky_relu(linear(sd, "pose_decoder.decoder.0", mu), 0.01)
    h = F.leaky_relu(linear(sd, "pose_decoder.decoder.3", h), 0.01)
    rotmat = gram_schmidt_6d(linear(sd, "pose_decoder.decoder.5", h))
    return {"feature": feature, "mu": mu, "scale": scale, "rotmat": rotmat}


# ------------------------------------------------------------------------------------------ text side


def distilbert(sd: State, tokens: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """DistilBertModel.last_hidden_state, eval: (B, L) ids, (B, L) bool mask -> (B, L, H)."""
    positions = torch.arange(tokens.shape[1])
    x = sd["embeddings.word_embeddings.weight"][tokens] + sd["embeddings.position_embeddings.weight"][positions]
    x = layer_norm(sd, "embeddings.LayerNorm", x, 1e-12)
    n_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.layer.")})
    for i in range(n_layers):
        p = f"transformer.layer.{i}"
        q, k, v = (linear(sd, f"{p}.attention.{n}", x) for n in ("q_lin", "k_lin", "v_lin"))
        a = linear(sd, f"{p}.attention.out_lin", attention(q, k, v, heads, mask))
        x = layer_norm(sd, f"{p}.sa_layer_norm", a + x, 1e-12)
        ff = linear(sd, f"{p}.ffn.lin2", gelu(linear(sd, f"{p}.ffn.lin1", x)))
        x = layer_norm(sd, f"{p}.output_layer_norm", ff + x, 1e-12)
    return x


def text_encoder(
    sd: State, tokens: torch.Tensor, lengths: torch.Tensor, bert_heads: int, normalize: bool
) -> torch.Tensor:
    """The original TransformerTextEncoder ('avgp'), state dict keys under `text_encoder.`: (B, L) -> (B, D)."""
    mask = torch.arange(tokens.shape[1])[None] < lengths[:, None]
    h = distilbert(sub(sd, "text_encoder.pretrained_text_encoder."), tokens, mask, bert_heads)
    x = linear(sd, "text_encoder.projection.1", torch.relu(h))
    x = x + sd["text_encoder.positional_encoding.pe"][: x.shape[1], 0][None]
    n_layers = len({k.split(".")[3] for k in sd if k.startswith("text_encoder.transformer_encoder.layers.")})
    for i in range(n_layers):
        x = post_norm_encoder_layer(sd, f"text_encoder.transformer_encoder.layers.{i}", x, 4, mask)
    pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def retrieval_pose(sd: State, poses: torch.Tensor) -> torch.Tensor:
    x = vposer_trunk(sd, "pose_encoder.encoder", poses)
    x = linear(sd, "pose_encoder.encoder.10", torch.relu(linear(sd, "pose_encoder.encoder.8", x)))
    return F.normalize(x, dim=-1)


def pair_embedding(sd: State, poses_a: torch.Tensor, poses_b: torch.Tensor) -> torch.Tensor:
    x = torch.cat([retrieval_pose(sd, poses_a), retrieval_pose(sd, poses_b)], dim=1)
    for i in (1, 3, 5):
        x = F.leaky_relu(linear(sd, f"pose_mlp.{i}", x), 0.01)
    return F.normalize(x, dim=-1)


# ------------------------------------------------------------------------------------------ image encoder


def smplerx_vit(network: State, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 256, 192) in [0, 1] -> (B, 192, D) patch tokens of the SMPLer-X ViT (`module.encoder.` keys)."""
    sd = sub(network, "module.encoder.")
    w = sd["patch_embed.proj.weight"]
    x = F.conv2d(images, w, sd["patch_embed.proj.bias"], stride=w.shape[-1], padding=2)  # (B, D, 16, 12)
    x = x.flatten(2).transpose(1, 2)
    x = x + sd["pos_embed"][:, 1:] + sd["pos_embed"][:, :1]
    tokens = sd["task_tokens"].shape[1]
    x = torch.cat([sd["task_tokens"].expand(x.shape[0], -1, -1), x], dim=1)
    heads = x.shape[-1] // 64
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(n_blocks):
        p = f"blocks.{i}"
        h = layer_norm(sd, f"{p}.norm1", x, 1e-6)
        q, k, v = linear(sd, f"{p}.attn.qkv", h).chunk(3, dim=-1)
        x = x + linear(sd, f"{p}.attn.proj", attention(q, k, v, heads))
        h = layer_norm(sd, f"{p}.norm2", x, 1e-6)
        x = x + linear(sd, f"{p}.mlp.fc2", gelu(linear(sd, f"{p}.mlp.fc1", h)))
    return layer_norm(sd, "last_norm", x, 1e-6)[:, tokens:]


# ------------------------------------------------------------------------------------------ core models


def modality_tokens(
    core: State, kind: str, features: Mapping[str, torch.Tensor], l2normalize: bool = True
) -> dict[str, torch.Tensor]:
    """Frozen features {image (B, T, D_i), pose (B, D_p), text (B, D_t)} -> one token per modality (B, D)."""
    prefixes = {m: f"{m}_encoder.{m}_projection.0" for m in MODALITIES}
    out = {}
    for m, x in features.items():
        x = torch.relu(linear(core, prefixes[m], x))
        if m == "image":
            x = x.mean(1)  # projected per token, then averaged
        if kind == "Aligner":
            p = f"{m}_external_encoder_proj.layers"
            x = linear(core, f"{p}.5", torch.relu(linear(core, f"{p}.2", torch.relu(linear(core, f"{p}.0", x)))))
        out[m] = F.normalize(x, dim=-1) if l2normalize else x
    return out


def intermodality(core: State, kind: str, tokens: Mapping[str, torch.Tensor], subset: tuple[str, ...]) -> torch.Tensor:
    """x̄ (B, D) of the bundle `subset`."""
    if kind == "Aligner":
        mixed = torch.stack([tokens[m] for m in subset]).mean(0)
        return F.normalize(mixed, dim=-1)
    batch = tokens[subset[0]].shape[0]
    seq = [core["intermodality_token"].reshape(1, 1, -1).expand(batch, 1, -1)]
    seq += [(tokens[m] + core[f"modality_encoding_{m}"].reshape(1, -1))[:, None] for m in subset]
    x = linear(core, "embroider_core.0", torch.cat(seq, dim=1))
    x = post_norm_encoder_layer(core, "embroider_core.1", x, 4)
    x = linear(core, "embroider_core.2", x)
    return layer_norm(core, "norm", x, 1e-6)[:, 0]


def query_feature(core: State, kind: str, xbar: torch.Tensor, target: str, l2normalize: bool = True) -> torch.Tensor:
    if kind == "Aligner":
        return xbar
    p = f"modality_projection_{target}.layers"
    x = linear(core, f"{p}.2", torch.relu(linear(core, f"{p}.0", xbar)))
    return F.normalize(x, dim=-1) if l2normalize else x


# ------------------------------------------------------------------------------------------ downstream heads


def hps(sd: State, xbar: torch.Tensor, iterations: int = 3) -> dict[str, torch.Tensor]:
    """HPSEstimator: 3 residual iterations from `init_value` over Concat[x̄, state], special Gram-Schmidt of the
    (J, 3, 2) state (roma.special_gramschmidt: columns), and the shape MLP."""
    state = sd["pose_prediction_head.init_value"].expand(xbar.shape[0], -1)
    p = "pose_prediction_head.regressor_residual"
    for _ in range(iterations):
        h = F.leaky_relu(linear(sd, f"{p}.1", torch.cat([xbar, state], dim=1)), 0.01)
        h = F.leaky_relu(linear(sd, f"{p}.4", h), 0.01)
        state = state + linear(sd, f"{p}.7", h)
    betas = linear(
        sd, "bodyshape_prediction_head.layers.2", torch.relu(linear(sd, "bodyshape_prediction_head.layers.0", xbar))
    )
    return {"rotations": gram_schmidt_6d(state), "betas": betas}


def tirg_memory(sd: State, xbar_a: torch.Tensor, xbar_b: torch.Tensor) -> torch.Tensor:
    """TIRG(main = B, modifier = A) then the adapter: (B, 1, D_dec)."""
    both = torch.cat([xbar_b, xbar_a], dim=1)
    p = "comparison_module.tirg"
    gate = linear(
        sd, f"{p}.gated_feature_composer.3", torch.relu(batch_norm_eval(sd, f"{p}.gated_feature_composer.1", both))
    )
    res = torch.relu(
        linear(sd, f"{p}.res_info_composer.3", torch.relu(batch_norm_eval(sd, f"{p}.res_info_composer.1", both)))
    )
    res = linear(sd, f"{p}.res_info_composer.5", res)
    a = sd[f"{p}.a"]
    fused = torch.sigmoid(gate) * xbar_b * a[0] + res * a[1]
    return linear(sd, "modality_input_adapter.encoder_hidden_state_adaptor", fused)[:, None]


def decoder_logits(
    sd: State, memory: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, heads: int
) -> torch.Tensor:
    """Teacher-forced logits (B, L, V): embeddings x sqrt(d) + PE, post-norm decoder layers (causal self-attention
    with padding mask, cross-attention to the memory, GELU FFN), final layer. The one memory token gets no PE."""
    d = sd["text_decoder.embedding.weight"].shape[1]
    length = tokens.shape[1]
    x = (
        sd["text_decoder.embedding.weight"][tokens] * math.sqrt(d)
        + sd["text_decoder.positional_encoding.pe"][:length, 0]
    )
    real = torch.arange(length)[None] < lengths[:, None]  # (B, L) keys that are real tokens
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    n_layers = len({k.split(".")[3] for k in sd if k.startswith("text_decoder.transformer_decoder.layers.")})
    for i in range(n_layers):
        p = f"text_decoder.transformer_decoder.layers.{i}"
        q, k, v = (x @ sd[f"{p}.self_attn.in_proj_weight"].t() + sd[f"{p}.self_attn.in_proj_bias"]).chunk(3, dim=-1)
        b, hd = x.shape[0], d // heads
        qh, kh, vh = (t.view(b, length, heads, hd).transpose(1, 2) for t in (q, k, v))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(hd)
        allowed = causal[None, None] & real[:, None, None, :]
        attended = (scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ vh).transpose(1, 2).reshape(b, length, d)
        x = layer_norm(sd, f"{p}.norm1", x + linear(sd, f"{p}.self_attn.out_proj", attended), 1e-5)
        w, bias = sd[f"{p}.multihead_attn.in_proj_weight"], sd[f"{p}.multihead_attn.in_proj_bias"]
        cq = x @ w[:d].t() + bias[:d]
        ck, cv = memory @ w[d : 2 * d].t() + bias[d : 2 * d], memory @ w[2 * d :].t() + bias[2 * d :]
        x = layer_norm(
            sd, f"{p}.norm2", x + linear(sd, f"{p}.multihead_attn.out_proj", attention(cq, ck, cv, heads)), 1e-5
        )
        ff = linear(sd, f"{p}.linear2", gelu(linear(sd, f"{p}.linear1", x)))
        x = layer_norm(sd, f"{p}.norm3", x + ff, 1e-5)
    return linear(sd, "text_decoder.final_layer", x)


def greedy(
    sd: State,
    memory: torch.Tensor,
    heads: int,
    bos: int,
    eos: int,
    pad: int,
    min_length: int = 10,
    max_length: int = 200,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original's `generate_greedy` (original_system.md §2.10): the whole prefix re-decoded at every step, EOS
    forbidden while the texts are shorter than `min_length`, PAD after EOS, stop when every text has ended.
    Returns the tokens after BOS (B, steps) and the top-1 minus top-2 log-probability margin of each step."""
    batch = memory.shape[0]
    tokens = torch.full((batch, 1), bos, dtype=torch.long)
    lengths = torch.ones(batch, dtype=torch.long)
    ongoing = torch.ones(batch, dtype=torch.bool)
    margins = []
    for _ in range(1, max_length):
        logp = decoder_logits(sd, memory, tokens, lengths, heads)[:, -1].log_softmax(-1)
        if int(lengths[0]) < min_length:
            logp[:, eos] = float("-inf")
        top = logp.topk(2, dim=-1)
        margins.append(top.values[:, 0] - top.values[:, 1])
        nxt = top.indices[:, 0].clone()
        nxt[~ongoing] = pad
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        lengths[ongoing] += 1
        ongoing &= nxt != eos
        if not ongoing.any():
            break
    return tokens[:, 1:], torch.stack(margins, dim=1)
