"""The unified model, top to bottom.

    image  [B, 3, H, W] --ResNetTrunk--> C1..C5 --VisualEncoder--> pyramid P2..P5   (d channels)
    prompt [B] strings --T5 encoder--> prompt tokens [B, T, d_text] --Linear--> [B, T, d]
    HemaFormer(pyramid, prompt) --> fused P3..P5 (token level), queries [B, Q, d] (query level),
                                    joint [B, d] (global level); a top-down pass carries the
                                    fused maps down to P2
    heads[task](fused, batch)    --> HeadOutput (+ loss_<task>_<term> in training)

The contracts are typed (:mod:`unihema.modeling.types`): a ``Batch`` in, the ``Fused``
representation (with the T5 ``Decoder`` bound to the batch's memory) between the fusion and the
heads, a ``HeadOutput`` out of a head.

Text answers (mlm, vqa, the morphology sentence) come from the T5 decoder cross-attending to
``memory = [joint ; queries ; fused P5 tokens ; prompt tokens enriched by fusion]`` projected
to ``d_text``: the image reaches the answer through all four parts. The joint embedding also
carries a pooled-trunk shortcut (``trunk_pool``, the masked mean of C5), a short path from the
pixels to the global heads and the decoder.

Every batch holds one task (the mixture sampler guarantees it); the trunk, the text encoder and
the fusion run once per batch and only that task's head runs after them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from unihema import __version__
from unihema.config.loader import to_dict
from unihema.config.schema import Config, ModelConfig
from unihema.data.text.language import fill_hints, reading_text
from unihema.modeling.backbone import (PIXEL_MEAN, PIXEL_STD, ResNetTrunk, VisualEncoder,
                                       downsample_mask, white_balance)
from unihema.modeling.fusion import HemaFormer
from unihema.modeling.heads import HEADS, TaskHead
from unihema.modeling.text import TextModel, load_tokenizer
from unihema.modeling.types import Batch, Decoder, ForwardPass, Fused, Objective

# importing the head modules registers them
from unihema.modeling.heads import cell as _cell_heads, dense as _dense_heads  # noqa: F401,E402
from unihema.modeling.heads import text as _text_heads  # noqa: F401,E402

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: JSON files of the tokenizer that save_pretrained writes beside the weights
_TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
#: prompt sets whose T5 encoding :meth:`UniHema.encode_prompts` keeps at inference
PROMPT_CACHE_SIZE = 8


def scalars_to_vectors(module: nn.Module, state_dict: Dict[str, torch.Tensor], prefix: str,
                       *_: Any) -> None:
    """``load_state_dict`` pre-hook: a one-value parameter (fusion gates, head scales) that a
    checkpoint written before 2026-12-05 holds 0-dim is reshaped to the model's ``[1]``."""
    own = module.state_dict(keep_vars=True)
    for key, value in list(state_dict.items()):
        name = key[len(prefix):] if key.startswith(prefix) else None
        if name in own and value.dim() == 0 and tuple(own[name].shape) == (1,):
            state_dict[key] = value.reshape(1)


def _clear_prompt_cache(module: "UniHema", _incompatible_keys) -> None:
    module.clear_prompt_cache()  # new weights make cached prompt encodings stale


class UniHema(nn.Module):
    """One model, six tasks. Build with :meth:`from_config` or :meth:`from_pretrained`."""

    def __init__(self, *, config: ModelConfig, tokenizer: Any,
                 t5_config: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.register_load_state_dict_pre_hook(scalars_to_vectors)
        self.register_load_state_dict_post_hook(_clear_prompt_cache)
        # sorted distinct prompts -> (encoder weight versions, ids, mask, states); see
        # encode_prompts
        self._prompt_cache: "OrderedDict[Tuple[str, ...], Tuple[Any, ...]]" = OrderedDict()
        bad = [t for t in config.reading.tasks if t not in ("vqa", "mlm")]
        if bad:
            raise ValueError(f"model.reading.tasks: {bad} are not text tasks; the reading goes "
                             f"into the prompts of 'vqa' and 'mlm' only")
        d = config.d_model
        self.trunk = ResNetTrunk(depth=config.backbone.depth, width=config.backbone.width,
                                 norm=config.backbone.norm,
                                 small_side=config.backbone.small_side)
        if config.backbone.pretrained:
            self.trunk.load_torchvision(config.backbone.pretrained)
        enc = config.encoder
        self.visual = VisualEncoder(in_channels=self.trunk.channels, d_model=d, layers=enc.layers,
                                    heads=enc.heads, ffn=enc.ffn, levels=enc.levels)
        # t5_config: the exact T5 architecture of a saved model (a T5 loaded from a Hugging Face
        # folder may differ from what the size settings describe)
        self.text = TextModel.from_config(config.text, tokenizer, t5_config=t5_config)
        d_text = self.text.d_model
        self.text_in = nn.Linear(d_text, d)
        fu = config.fusion
        self.fusion = HemaFormer(d_model=d, heads=fu.heads, layers=fu.layers, levels=fu.levels,
                                 queries=fu.queries, query_layers=fu.query_layers)
        self.topdown = nn.ModuleDict({k: nn.Conv2d(d, d, 3, padding=1) for k in ("P2", "P3",
                                                                                  "P4")})
        self.query_out = nn.Linear(d, d_text)
        self.joint_out = nn.Linear(d, d_text)
        self.prompt_out = nn.Linear(d, d_text)
        nn.init.zeros_(self.prompt_out.weight)  # start from the plain T5 prompt encoding
        nn.init.zeros_(self.prompt_out.bias)
        self.trunk_pool = nn.Linear(self.trunk.channels["C5"], d)
        self.heads = nn.ModuleDict({task: HEADS.get(task).from_config(config)
                                    for task in config.tasks})
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), False)

    @classmethod
    def from_config(cls, cfg: Union[Config, ModelConfig], tokenizer: Any = None) -> "UniHema":
        mcfg = cfg.model if isinstance(cfg, Config) else cfg
        return cls(config=mcfg, tokenizer=tokenizer or load_tokenizer(mcfg.text.tokenizer))

    # ------------------------------------------------------------------ shared trunk
    def encode_image(self, images: torch.Tensor, pixel_mask: torch.Tensor, dense: bool = True,
                     trunk_items: int = 0) -> Dict[str, torch.Tensor]:
        """The prompt-independent part: ``images [B, 3, H, W]`` in [0, 1] -> ``{"C1": stem
        features [B, c, H/2, W/2], "pooled": masked mean of C5 [B, c5], "P2".."P5": pyramid}``.
        Several prompts over one image can share it. ``dense=False`` (heads that read only
        the global embedding, the queries or the decoder memory) leaves out C1 and P2.

        ``trunk_items = k``: the last ``k`` items go through the trunk only; every output
        then covers the first ``B - k`` and ``"trunk_pooled" [k, c5]`` holds the pooled C5
        of the last ``k`` (one trunk pass for all ``B``)."""
        # each item normalised with the BatchNorm statistics of its kind (crop or field), read
        # from its real size: evaluation batches may pad a crop beside a field
        small = real_sides(pixel_mask) <= self.trunk.small_side
        if self.config.backbone.white_balance:
            images = white_balance(images, pixel_mask)
        feats = self.trunk((images - self.pixel_mean) / self.pixel_std, small=small)
        pooled = HemaFormer.masked_mean(feats["C5"], pixel_mask)
        n = images.shape[0] - trunk_items
        if not 0 < n <= images.shape[0]:
            raise ValueError(f"trunk_items = {trunk_items} leaves no item of a batch of "
                             f"{images.shape[0]} for the full path")
        if trunk_items:
            feats = {k: v[:n] for k, v in feats.items()}
            pixel_mask = pixel_mask[:n]
        out = {"pooled": pooled[:n], **self.visual(feats, pixel_mask, dense=dense)}
        if trunk_items:
            out["trunk_pooled"] = pooled[n:]
        if dense:
            out["C1"] = feats["C1"]
        return out

    def encode(self, images: torch.Tensor, pixel_mask: torch.Tensor, prompts: List[str],
               dense: bool = True) -> Fused:
        """Run trunk, text encoder and fusion once: ``images [B, 3, H, W]`` in [0, 1],
        ``pixel_mask [B, H, W]``, ``B`` prompt strings -> the fused representation
        (``dense=False``: without the maps only per-pixel heads read, see :meth:`fuse`)."""
        return self.fuse(self.encode_image(images, pixel_mask, dense), pixel_mask, prompts)

    def fuse(self, visual: Dict[str, torch.Tensor], pixel_mask: torch.Tensor,
             prompts: List[str], readings: Optional[List[str]] = None) -> Fused:
        """Prompt encoding, Hema-Former fusion and the decoder memory for ``B`` prompts over
        the output of :meth:`encode_image` (batch ``B``); ``readings``: text the prompts carry
        after ``" reading:"`` (:meth:`reading_prompts`), whose tokens the decoder may copy in
        order. Without ``"P2"`` in ``visual`` (``encode_image(..., dense=False)``) the
        top-down pass is left out too: ``joint``, ``queries`` and the memory do not depend on
        it, only the detection and segmentation heads read the maps it refines."""
        pyramid = {k: v for k, v in visual.items() if k.startswith("P")}
        offsets = None
        if readings is None:
            ids, am, t_raw = self.encode_prompts(prompts)
        else:
            ids, am, offsets = self.text.tokenize_pairs(
                [f"{p} reading:" for p in prompts], readings, self.config.text.max_prompt_tokens)
            t_raw = self.text.encode(ids, am)
        fused = self.fusion(pyramid, pixel_mask, self.text_in(t_raw), am.bool())
        maps = {k: v for k, v in fused.items() if k.startswith("P")}
        if "P2" in visual:
            for fine, coarse in (("P4", "P5"), ("P3", "P4"), ("P2", "P3")):
                up = F.interpolate(maps[coarse], size=maps[fine].shape[-2:], mode="nearest")
                maps[fine] = maps[fine] + self.topdown[fine](up)
            maps["C1"] = visual["C1"]
        # the pooled trunk itself joins the global embedding: a short path from the pixels to
        # the classification and morphology heads that the random-init transformers cannot blur
        # early in training (measured: 0.33 -> 0.58 white-cell macro-F1 after 300 crop steps)
        joint = fused["joint"] + self.trunk_pool(visual["pooled"])
        # the decoder reads the image twice: through the resampled queries and through the
        # fused coarsest map itself (a few dozen tokens), then the prompt enriched by fusion
        p5 = maps["P5"].flatten(2).transpose(1, 2)
        p5_mask = downsample_mask(pixel_mask, maps["P5"].shape[-2:]).flatten(1).to(am.dtype)
        # the first memory token is the joint embedding the classification and morphology
        # heads read, so an answer about a cell's type or look sees what those heads see
        lead = [self.joint_out(joint)[:, None], self.query_out(fused["queries"])]
        memory = torch.cat(lead + [self.query_out(p5), t_raw + self.prompt_out(fused["text"])],
                           1)
        memory_mask = torch.cat([am.new_ones(am.shape[0], 1 + fused["queries"].shape[1]),
                                 p5_mask, am], 1)
        # what the decoder may copy: the prompt's tokens (the visual tokens carry no token id)
        lead_ids = ids.new_full(memory_mask[:, :-ids.shape[1]].shape, -1)
        decoder = Decoder(
            self.text, memory, memory_mask, torch.cat([lead_ids, ids.masked_fill(am == 0, -1)], 1),
            None if offsets is None else torch.cat([lead_ids, offsets], 1),
            max_new_tokens=self.config.text.max_target_tokens,
            num_beams=self.config.heads.num_beams)
        return Fused(joint=joint, text_model=self.text, maps=maps, queries=fused["queries"],
                     text=fused["text"], decoder=decoder)

    # ------------------------------------------------------------------ prompt encodings
    def encode_prompts(self, prompts: Sequence[str]
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``B`` prompt strings -> ``(ids [B, T], mask [B, T], states [B, T, d_text])``: the
        tokens and the T5 encoder's last hidden state, padded to the longest prompt.

        In training, or whenever gradients are on, every call encodes its prompts. At
        inference (eval mode under ``torch.no_grad``) each distinct prompt is encoded once per
        set of distinct prompts and the set's encoding is kept (an LRU of
        :data:`PROMPT_CACHE_SIZE` sets): the batches of a whole-smear analysis ask the same few
        prompts thousands of times. The set is padded as the full list would be (to its
        longest prompt), so rows equal those of an uncached call. Any in-place change of the
        encoder's weights (optimizer step, ``load_state_dict``), ``train()`` and a move to
        another device or dtype invalidate it."""
        max_len = self.config.text.max_prompt_tokens
        if self.training or torch.is_grad_enabled():
            ids, am = self.text.tokenize(list(prompts), max_len)
            return ids, am, self.text.encode(ids, am)
        key = tuple(sorted(set(prompts)))
        version = self.text._weights_version()
        hit = self._prompt_cache.get(key)
        if hit is None or hit[0] != version:
            ids, am = self.text.tokenize(list(key), max_len)
            hit = (version, ids, am, self.text.encode(ids, am))
            self._prompt_cache[key] = hit
        self._prompt_cache.move_to_end(key)
        while len(self._prompt_cache) > PROMPT_CACHE_SIZE:
            self._prompt_cache.popitem(last=False)
        row = {p: i for i, p in enumerate(key)}
        index = torch.tensor([row[p] for p in prompts], device=hit[1].device)
        return hit[1][index], hit[2][index], hit[3][index]

    def clear_prompt_cache(self) -> None:
        """Forget the prompt encodings :meth:`encode_prompts` keeps."""
        self._prompt_cache.clear()

    def train(self, mode: bool = True) -> "UniHema":
        # entering training invalidates; eval() after eval() (predict loops) keeps the cache
        if mode:
            self.clear_prompt_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        # .to(device / dtype) would leave cached encodings on the old device
        self.clear_prompt_cache()
        return super()._apply(fn, *args, **kwargs)

    def head(self, task: str) -> TaskHead:
        """The head of ``task``; a ``KeyError`` naming the model's heads when it has none."""
        if task not in self.heads:
            raise KeyError(f"this model has no '{task}' head; it has {list(self.heads)}")
        return self.heads[task]

    def trunk_view(self, pooled: torch.Tensor) -> Fused:
        """A global view of pooled trunk features ``pooled [k, c5]`` (:meth:`encode_image`'s
        ``"pooled"`` / ``"trunk_pooled"``) through ``trunk_pool``, the path that joins them to
        the global embedding: what a head's :meth:`TaskHead.cross_loss` can score without the
        fusion (deep supervision of the trunk, :mod:`unihema.engine.objectives`)."""
        return Fused(joint=self.trunk_pool(pooled), text_model=self.text)

    def _reading_texts(self, batch: Batch) -> Optional[List[str]]:
        return self.reading_prompts(batch) if batch.task in self.config.reading.tasks else None

    def reading_prompts(self, batch: Mapping[str, Any]) -> List[str]:
        """The part of the reading each text item's prompt carries: for a question, the
        entries it names (``language.reading_text``); for a masked report, the passage of the
        reading's report at each blank (``language.fill_hints``)."""
        readings = self.readings(batch)
        if batch["task"] == "mlm":
            masked = batch.get("masked_texts") or batch["prompts"]
            return [fill_hints(m, r["report"]) for m, r in zip(masked, readings)]
        questions = batch.get("questions") if self.config.reading.select else None
        questions = questions or [None] * len(readings)
        return [reading_text(r["entries"], q) for r, q in zip(readings, questions)]

    def readings(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """What the text decoder is told is on each image of ``batch``: in training the
        annotations' reading, ``batch["readings"]``; at inference what a
        :class:`~unihema.modeling.reading.ReadingCascade` put there (``reading_source`` set),
        else the model's own, read by a cascade made for this call (no cache)."""
        if self.training or batch.get("reading_source"):
            if "readings" not in batch:
                raise KeyError(f"a {batch['task']} batch needs 'readings' (the annotations' "
                               f"reading) to train with model.reading.tasks")
            return list(batch["readings"])
        from unihema.modeling.reading import ReadingCascade

        return ReadingCascade(self).readings(batch)

    # ------------------------------------------------------------------ train / predict
    def forward(self, batch: Union[Batch, Mapping[str, Any]],
                objectives: Sequence[Objective] = ()) -> Dict[str, torch.Tensor]:
        """Raw (unweighted) losses ``{"loss_<task>_<term>": scalar}`` of a one-task batch:
        encode -> fuse -> head -> loss.

        ``objectives`` (:class:`~unihema.modeling.types.Objective`, composed by the trainer:
        :mod:`unihema.engine.objectives`) add their terms from the same pass, inside this call
        so that DDP and DeepSpeed see one forward. An objective may reserve items at the
        batch's end (``trunk_items``) that go through the trunk only: one trunk pass covers
        them, and the full path (fusion, head) the others."""
        batch = Batch.from_dict(batch)
        k = sum(objective.trunk_items(batch) for objective in objectives)
        if not 0 <= k < batch.size:
            raise ValueError(f"trunk_items = {k} leaves no item of a batch of {batch.size} "
                             f"for the full path")
        main = batch.slice(0, batch.size - k) if k else batch
        head = self.head(batch.task)
        visual = self.encode_image(batch.images, batch.pixel_mask, head.dense, k)
        fused = self.fuse(visual, main.pixel_mask, main.prompts, self._reading_texts(main))
        output = head(fused, main)
        losses = dict(head.loss(output, main))
        done = ForwardPass(batch=batch, main=main, visual=visual, fused=fused, output=output)
        for objective in objectives:
            for name, value in objective(self, done).items():
                if name in losses:
                    raise KeyError(f"{type(objective).__name__} repeats loss '{name}' of the "
                                   f"{batch.task} batch")
                losses[name] = value
        return losses

    @torch.no_grad()
    def predict(self, batch: Union[Batch, Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Per-item predictions of a one-task batch (formats in ``unihema.evaluation``)."""
        was_training = self.training
        self.eval()
        try:
            batch = Batch.from_dict(batch)
            head = self.head(batch.task)
            visual = self.encode_image(batch.images, batch.pixel_mask, head.dense)
            fused = self.fuse(visual, batch.pixel_mask, batch.prompts, self._reading_texts(batch))
            return head.postprocess(head(fused, batch), batch)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: Union[str, Path], extra: Optional[Dict] = None,
                        processor: Any = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + tokenizer files +
        ``preprocessor_config.json``, atomically.

        ``extra`` joins ``config.json`` (the trainer stores ``image_size``, ``upscale``,
        ``crop_size``, class lists, image statistics); ``processor`` (a
        :class:`~unihema.pipeline.processing.UniHemaProcessor`) is the preprocessing saved
        beside the weights, by default the one those ``extra`` settings and the model's
        ``backbone.small_side`` describe.

        The folder is assembled under a temporary name beside ``directory`` and renamed into
        place, so a crash never leaves a half-written checkpoint under the final name.
        """
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            cfg = to_dict(self.config)
            cfg["backbone"]["pretrained"] = ""  # weights are in model.safetensors
            cfg["text"]["pretrained"] = ""
            cfg["text"]["tokenizer"] = ""
            meta = {"unihema_version": __version__, "model": cfg,
                    "t5_config": self.text.architecture(), **(extra or {})}
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
            save_model(self, str(tmp / WEIGHTS_NAME))
            self.tokenizer.save_pretrained(str(tmp))
            if processor is None:
                from unihema.pipeline.processing import UniHemaProcessor

                processor = UniHemaProcessor.from_checkpoint_meta(meta)
            processor.save_pretrained(tmp)
            old = directory.with_name(f".{directory.name}.old")
            if directory.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path], map_location: str = "cpu"
                        ) -> "UniHema":
        """Rebuild a model saved by :meth:`save_pretrained` (no pickle is ever loaded).

        Raises:
            FileNotFoundError: the folder has no ``config.json`` or no ``model.safetensors``.
            WeightsError: (a ``ValueError``) a file of the folder is damaged or invalid: the
                message names the file, the key path (``model.d_model``) or the tensors
                concerned, and what was expected.
        """
        from unihema.modeling.weights import WeightsError, load_into, read_json, \
            read_model_config

        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        if not cfg_path.is_file():
            raise FileNotFoundError(f"'{directory}' is not a unihema checkpoint: no {CONFIG_NAME}")
        config, meta = read_model_config(cfg_path)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{directory}: {WEIGHTS_NAME} is missing")
        for name in _TOKENIZER_JSON:  # a cut tokenizer file: name it, not a bare parser error
            if (directory / name).is_file():
                read_json(directory / name, "the tokenizer file save_pretrained writes")
        try:
            tokenizer = load_tokenizer(str(directory))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{directory}: its tokenizer files do not load: {exc}") from None
        try:
            model = cls(config=config, tokenizer=tokenizer, t5_config=meta.get("t5_config"))
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{cfg_path}: the model it describes cannot be built ({exc}); "
                               f"check its 't5_config' and 'model' sections") from None
        load_into(model, weights, device=map_location, described_by=str(cfg_path))
        model.checkpoint_meta = {k: v for k, v in meta.items() if k not in ("model", "t5_config")}
        return model

    def num_parameters(self) -> Dict[str, int]:
        """Parameter counts per top-level part (for logs and benchmarks)."""
        out = {name: sum(p.numel() for p in mod.parameters())
               for name, mod in self.named_children()}
        out["total"] = sum(p.numel() for p in self.parameters())
        return out


def real_sides(pixel_mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` longer side of each item's real (unpadded) image, from ``pixel_mask [B, H, W]``."""
    return torch.maximum(pixel_mask.any(2).sum(1), pixel_mask.any(1).sum(1))
