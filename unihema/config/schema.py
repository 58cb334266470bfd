"""The configuration schema: every key, its type, its default and a one-line comment.

A config file is YAML validated against these dataclasses (see :mod:`unihema.config.loader`).
Unknown keys and wrong types are errors that list the valid keys. ``unihema config schema``
prints this whole table; ``unihema config show FILE`` prints a resolved config.

Each field is declared with :func:`opt`, whose ``help`` is the one-line comment.

Task names (:data:`TaskName` fields) are not a fixed list: :data:`TASK_NAMES` starts with the
built-in tasks and :func:`unihema.tasks.register` adds every task registered later (a plugin's
too), so this layer names no task module and never imports :mod:`unihema.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, Iterable, Iterator, List, Literal, Optional, Tuple

#: largest seed: NumPy's legacy seeding and many tools take 32-bit unsigned seeds
SEED_MAX = 2**32 - 1


def opt(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    range: Optional[Tuple[float, Optional[float]]] = None,
    at_most: Optional[str] = None,
) -> Any:
    """A dataclass field with a one-line ``help`` comment (shown by ``unihema config schema``).

    ``range=(lo, hi)`` bounds a number (or every number of a tuple or list, every value of a
    mapping) inclusively; ``hi=None`` leaves it unbounded above. ``at_most="other"`` requires
    the value to be at most the sibling field ``other`` of the same section. The loader rejects
    a value outside either, naming its key path, the value and the bound.
    """
    if not help:
        raise ValueError("every config key needs a one-line help comment")
    meta = {"help": help, "range": range, "at_most": at_most}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults need factory=...")
    return field(default=default, metadata=meta)


@dataclass
class AugmentConfig:
    """Training-time augmentations; boxes and masks always move with the pixels."""

    hflip: float = opt(0.5, "probability of a horizontal flip", range=(0.0, 1.0))
    vflip: float = opt(
        0.5, "probability of a vertical flip (smears have no up or down)", range=(0.0, 1.0)
    )
    rot90: float = opt(
        0.5, "probability of a rotation by a random multiple of 90 degrees", range=(0.0, 1.0)
    )
    scale: Tuple[float, float] = opt(
        (0.8, 1.25), "random rescale factor range (min, max)", range=(0.05, 20.0)
    )
    crop: float = opt(0.3, "probability of a random crop", range=(0.0, 1.0))
    crop_min: float = opt(
        0.6, "smallest crop side as a fraction of the image side", range=(0.05, 1.0)
    )
    min_visibility: float = opt(
        0.35,
        "a box cut by a crop is kept when at least this fraction of its area remains",
        range=(0.0, 1.0),
    )
    color_jitter: float = opt(0.1, "strength of brightness/contrast/saturation jitter (0 = off)",
                              range=(0.0, 1.0))
    hue: float = opt(0.02, "maximum hue shift, in fractions of the colour wheel",
                     range=(0.0, 0.5))
    stain_jitter: float = opt(
        0.05, "std of the Romanowsky stain-channel perturbation (0 = off)", range=(0.0, 1.0)
    )
    blur: float = opt(0.1, "probability of a Gaussian blur", range=(0.0, 1.0))
    blur_sigma: Tuple[float, float] = opt(
        (0.3, 1.2), "Gaussian blur sigma range, in pixels", range=(0.0, 50.0)
    )


@dataclass
class SynthConfig:
    """The procedural blood-smear generator (the embedded default dataset)."""

    size: int = opt(256, "side of a generated field of view, in pixels", range=(32, 4096))
    seed: int = opt(0, "base seed; each split derives its own, so splits never share a field",
                    range=(0, SEED_MAX))
    train: int = opt(800, "number of training fields", range=(0, None))
    val: int = opt(100, "number of validation fields", range=(0, None))
    test: int = opt(100, "number of test fields (held out, generated from a different seed)",
                    range=(0, None))
    domain: float = opt(
        0.0,
        "domain shift in [0, 1]: 0 = reference stain/optics, 1 = strongly shifted",
        range=(0.0, 1.0),
    )
    max_red_cells: int = opt(
        60, "upper bound of red cells per field (0 up to this)", range=(0, 500)
    )
    white_cell_prob: float = opt(
        0.9, "probability that a field holds at least one white cell", range=(0.0, 1.0)
    )
    parasite_prob: float = opt(
        0.25, "probability that a field is infected with ring forms", range=(0.0, 1.0)
    )
    crop_size: int = opt(96, "side of the single-cell crops written beside each field",
                         range=(8, 4096))
    workers: int = opt(0, "worker processes for generation (0 = one per CPU core)",
                       range=(0, 4096))


class NameSet:
    """The valid values of a ``str`` config field that code may extend, in insertion order.

    A field typed ``Annotated[str, names]`` accepts exactly the strings in ``names`` when the
    config is validated (:mod:`unihema.config.loader`; an unknown one is an error listing the
    valid ones) and ``unihema config schema`` shows them, so a name added before a config is
    loaded can be used in it. Adding a name twice is harmless.
    """

    def __init__(self, kind: str, names: Iterable[str] = ()) -> None:
        self.kind = kind
        self._names: Dict[str, None] = dict.fromkeys(names)

    def add(self, name: str) -> None:
        """Accept ``name`` from now on (a non-empty string)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        self._names[name] = None

    def discard(self, name: str) -> None:
        """Stop accepting ``name`` (nothing happens when it is not there)."""
        self._names.pop(name, None)

    def names(self) -> List[str]:
        """The accepted names, in the order they were added."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"NameSet({self.kind!r}, {self.names()})"


#: task names a config may use: the built-in tasks (those of :data:`unihema.data.sample.TASKS`,
#: so configs validate before :mod:`unihema.tasks` is imported), then every task that
#: :func:`unihema.tasks.register` registers; unregistering a task removes its name
TASK_NAMES = NameSet("task", ("detect", "classify", "segment", "morphology", "mlm", "vqa"))
#: a config field holding a task name (validated against :data:`TASK_NAMES` when loaded)
TaskName = Annotated[str, TASK_NAMES]


@dataclass
class DatasetEntry:
    """One (dataset, split, tasks) source of the training or evaluation mixture."""

    name: str = opt("synthetic_smear", "registered adapter key (see `unihema data list`)")
    root: str = opt("", "dataset folder as downloaded; relative paths resolve from the CWD")
    spec: str = opt("", "YAML spec of a user's own dataset, for name: generic (format, paths, "
                    "class mapping, splits; see docs/adding_a_dataset.md); empty: "
                    "<root>/unihema_dataset.yaml")
    split: str = opt("train", "split to read; 'all': every split of the dataset in turn (e.g. "
                     "to test on a whole source that was never trained on)")
    tasks: List[TaskName] = opt(
        help="tasks to draw from this dataset (empty = all it supports)", factory=list
    )
    weight: float = opt(1.0, "relative sampling weight of each (dataset, task) pair",
                        range=(0.0, None))
    classes: Dict[str, List[str]] = opt(
        help="per task, a coarser class list to train and score on: every label is mapped to "
        "the listed class it is a kind of (vocabulary is-a), e.g. {detect: [red blood cell, "
        "white blood cell, platelet, malaria parasite]}; a label under none of them is an error",
        factory=dict)
    derive_text: bool = opt(False, "derive VQA questions and a report (MLM) from the "
                            "annotations of samples that have none (counts, presence, types "
                            "and locations of boxes; a crop's type and attributes), so the "
                            "text tasks see this dataset's images")
    candidates: Dict[str, List[str]] = opt(
        help="per task (classify, detect), the only classes to prompt and score: a crop whose "
        "label is a kind of none of them is left out, and so is such a box (counted and "
        "logged); for comparing models on the classes they share, e.g. {classify: [neutrophil, "
        "lymphocyte, monocyte, eosinophil, basophil]}; '-name' leaves out every label that is a "
        "kind of name (e.g. [lymphocyte, -atypical lymphocyte])",
        factory=dict)
    where: Dict[str, str] = opt(
        help="keep only the samples whose metadata matches every key, e.g. {subset: Dataset 1} "
        "for one acquisition of a dataset that holds several (`unihema data info NAME` lists "
        "the metadata an adapter records); values compare as text",
        factory=dict)


@dataclass
class DataConfig:
    """What the model sees: datasets, image size, batching."""

    train: List[DatasetEntry] = opt(help="training sources", factory=list)
    val: List[DatasetEntry] = opt(help="validation sources (periodic evaluation)", factory=list)
    test: List[DatasetEntry] = opt(help="held-out sources for the final evaluation",
                                   factory=list)
    image_size: int = opt(256, "longer image side after resizing, in pixels", range=(32, 8192))
    upscale: bool = opt(False, "also enlarge images smaller than image_size (off: crops keep "
                        "their native magnification)")
    crop_size: int = opt(0, "longer side that single-cell crops (samples whose meta kind is "
                         "'crop') are resized to, up or down; 0 = keep their native size. "
                         "Instruments crop cells at different magnifications (WBC-Seg-Zheng: "
                         "~74 px cells in 120-px crops, ~159 px in 300-px crops): one size "
                         "makes them comparable and keeps every crop on the crop BatchNorm "
                         "statistics (model.backbone.small_side)", range=(0, 8192))
    batch_size: int = opt(8, "images per batch (per process)", range=(1, 1_000_000))
    num_workers: int = opt(0, "DataLoader worker processes (0 = load in the main process)",
                           range=(0, 4096))
    on_error: Literal["raise", "skip"] = opt(
        "raise", "bad samples: 'raise' stops naming the file and reason, 'skip' reports them"
    )
    task_batch_size: Dict[TaskName, int] = opt(
        help="batch size of one task's batches, e.g. {classify: 32} (cell crops are small)",
        factory=dict, range=(1, 1_000_000),
    )
    task_weights: Dict[TaskName, float] = opt(
        help="multiplier of each task's sampling weight, e.g. {vqa: 2.0}", factory=dict,
        range=(0.0, None))
    balance: Dict[TaskName, float] = opt(
        help="class-balanced sampling per task, e.g. {classify: 1.0}: an item is drawn with "
        "probability proportional to n^-balance, n = the items of its split sharing its label "
        "(0 = as stored, 1 = every label equally often); for tasks whose items carry one label "
        "(classify, morphology)", factory=dict, range=(0.0, 1.0))
    cross_supervision: Dict[TaskName, List[TaskName]] = opt(
        help="in training, items of a task also carry the targets of other cell tasks and "
        "their batches train those heads too, e.g. {morphology: [classify], classify: "
        "[morphology]}: a white-cell crop of a morphology batch also trains its type, one of "
        "a classify batch its attributes (pairs of classify and morphology only)",
        factory=dict)
    trunk_items: Dict[TaskName, int] = opt(
        help="in training, this many extra items per batch of a cell task that only the "
        "visual trunk sees (deep supervision), e.g. {morphology: 96}: their pooled trunk "
        "features are scored by the same heads (loss_<task>_trunk_<term>), at a fraction of a "
        "full item's cost; the batch's other items take the full path (classify and "
        "morphology only)", factory=dict, range=(0, 100_000))
    augment: AugmentConfig = opt(help="training augmentations", factory=AugmentConfig)


@dataclass
class TrainConfig:
    """Optimisation and the run folder."""

    output_dir: str = opt("runs/default", "run folder: resolved config, checkpoints, logs")
    seed: int = opt(0, "global seed (Python, NumPy, torch, sampler)", range=(0, SEED_MAX))
    max_steps: int = opt(1000, "optimizer steps", range=(0, 10**9))
    max_minutes: float = opt(0.0, "wall-clock training budget in minutes (0 = none): the run "
                             "stops at max_steps or when the time is up, and the cosine schedule "
                             "follows the clock so it ends with the budget", range=(0.0, 1e7))
    lr: float = opt(3e-4, "peak learning rate (AdamW)", range=(0.0, 1.0))
    weight_decay: float = opt(0.05, "AdamW weight decay", range=(0.0, 1.0))
    warmup_steps: int = opt(100, "linear warm-up steps before the cosine decay",
                            range=(0, 10**9), at_most="max_steps")
    grad_clip: float = opt(1.0, "max gradient norm (0 = no clipping)", range=(0.0, None))
    eval_every: int = opt(500, "evaluate on data.val every N steps (0 = only at the end)",
                          range=(0, 10**9))
    save_every: int = opt(500, "write a resumable checkpoint every N steps (0 = only the model "
                          "at the end)", range=(0, 10**9))
    keep_last: int = opt(3, "complete checkpoints kept in output_dir/checkpoints (older ones "
                         "are deleted)", range=(1, 10**6))
    resume: str = opt("", "'' = start fresh, 'auto' = newest complete checkpoint of output_dir "
                      "(fresh when there is none), or a checkpoint folder")
    max_nonfinite: int = opt(20, "consecutive non-finite losses that stop the run (each one "
                             "skips its step)", range=(1, 10**6))
    grad_accum: int = opt(1, "micro-batches accumulated per optimizer step", range=(1, 4096))
    precision: Literal["auto", "fp32", "bf16", "fp16"] = opt(
        "auto", "autocast precision: auto = bf16 on GPUs that support it, else fp16 on GPUs, "
        "fp32 on a CPU unless cpu_bf16; bf16 on a CPU needs native bf16 (AVX512-BF16 or AMX)")
    cpu_bf16: bool = opt(False, "with precision auto on a CPU that computes bf16 natively "
                         "(AVX512-BF16 or AMX), autocast to bf16 (convolutions and matrix "
                         "products ~15 percent faster per demo step); other CPUs, and "
                         "DeepSpeed runs, stay fp32")
    deepspeed: str = opt("", "DeepSpeed JSON config (e.g. configs/deepspeed/zero2.json); '' = "
                         "plain PyTorch (DDP under torchrun)")
    log_every: int = opt(10, "log losses every N steps", range=(1, 10**9))
    loss_weights: Dict[str, float] = opt(
        help="weight of each loss term, keyed loss_<task>_<term>; a loss without a weight is "
        "an error",
        factory=dict, range=(0.0, None),
    )


@dataclass
class BackboneConfig:
    """The convolutional trunk (torchvision ResNet) returning C2..C5."""

    depth: Literal[18, 34, 50, 101] = opt(50, "ResNet depth (torchvision layouts)")
    width: int = opt(64, "channels of the first stage (64 = standard ResNet; 16 for tiny CPU "
                     "configs)", range=(8, 256))
    pretrained: str = opt("", "local torchvision ResNet state dict (.pth/.safetensors); '' = "
                          "random init")
    white_balance: bool = opt(
        False, "divide each image's colour channels by its bright background level (the 95th "
        "percentile of its real pixels) before the trunk: removes the illuminant and camera "
        "colour cast that differs between instruments (WBC-Seg-Zheng background RGB 252/244/186 "
        "on one, 227/189/179 on the other); part of the model, so inference does the same")
    norm: Literal["batch", "split_batch", "frozen_batch", "group"] = opt(
        "split_batch", "normalisation layers of the trunk (split_batch: BatchNorm with separate "
        "running statistics for inputs up to small_side pixels, i.e. cell crops, and fields)")
    small_side: int = opt(128, "with norm: split_batch, images whose longer real (unpadded) side "
                          "is at most this many pixels use the small-input statistics",
                          range=(0, 100000))


@dataclass
class VisualEncoderConfig:
    """The transformer over multi-scale visual tokens (after projection to model.d_model)."""

    layers: int = opt(6, "transformer encoder layers", range=(0, 48))
    heads: int = opt(8, "attention heads", range=(1, 64))
    ffn: int = opt(1024, "feed-forward width", range=(16, 16384))
    levels: List[Literal["C3", "C4", "C5"]] = opt(
        help="pyramid levels whose tokens enter the transformer", factory=lambda: ["C4", "C5"])


@dataclass
class TextConfig:
    """The T5 text model: its encoder reads prompts, its decoder writes answers."""

    tokenizer: str = opt("", "SentencePiece/T5 tokenizer directory; '' = the one shipped with "
                         "unihema")
    pretrained: str = opt("", "local Hugging Face T5 directory to load; '' = random init from "
                          "the sizes below")
    d_model: int = opt(768, "T5 hidden size", range=(16, 8192))
    d_kv: int = opt(64, "T5 size per attention head", range=(4, 1024))
    d_ff: int = opt(2048, "T5 feed-forward width", range=(16, 65536))
    num_layers: int = opt(12, "T5 encoder layers", range=(1, 64))
    num_decoder_layers: int = opt(12, "T5 decoder layers", range=(1, 64))
    num_heads: int = opt(12, "T5 attention heads", range=(1, 128))
    dropout: float = opt(0.0, "T5 dropout rate (0 keeps the fast CPU attention path)",
                         range=(0.0, 0.9))
    max_prompt_tokens: int = opt(96, "prompts are cut to this many tokens", range=(8, 4096))
    copy: bool = opt(False, "the decoder may copy prompt tokens (a pointer over the prompt, "
                     "mixed with the vocabulary by a learned gate; docs/model.md)")
    max_target_tokens: int = opt(64, "answers are cut to (and generated up to) this many tokens",
                                 range=(4, 4096))


@dataclass
class FusionConfig:
    """The Hema-Former: token-, query- and global-level fusion of image and prompt."""

    layers: int = opt(2, "bidirectional cross-attention blocks per pyramid level", range=(0, 24))
    heads: int = opt(8, "attention heads in fusion blocks", range=(1, 64))
    levels: List[Literal["C2", "C3", "C4", "C5"]] = opt(
        help="pyramid levels fused with the prompt at token level",
        factory=lambda: ["C3", "C4", "C5"])
    queries: int = opt(32, "learned queries resampling fused visual tokens (decoder memory, "
                       "classification, morphology)", range=(1, 1024))
    query_layers: int = opt(2, "query-level attention layers", range=(1, 24))


@dataclass
class HeadsConfig:
    """Sizes and decoding settings of the task heads."""

    dense_dim: int = opt(64, "channels of the detection and segmentation towers", range=(8, 1024))
    embed_dim: int = opt(64, "joint space where pixels and class names are compared",
                         range=(8, 1024))
    detect_topk: int = opt(300, "peaks kept per image before NMS", range=(1, 10000))
    detect_score_threshold: float = opt(0.02, "detections below this score are dropped",
                                        range=(0.0, 1.0))
    detect_nms_iou: float = opt(0.6, "IoU of torchvision batched NMS after peak picking",
                                range=(0.0, 1.0))
    num_beams: int = opt(1, "beam width of text generation (1 = greedy)", range=(1, 32))


@dataclass
class ReadingConfig:
    """What the model's own heads see, written as text into the prompts of its text tasks
    (docs/model.md, "The reading"). Training reads the annotations instead."""

    tasks: List[TaskName] = opt(help="text tasks whose prompt carries the reading ([] = none)",
                                factory=list)
    detect: List[str] = opt(help="classes detected on a field of view", factory=list)
    types: Dict[str, List[str]] = opt(
        help="detected class -> its types: one type renames the class, several are chosen "
             "among by the classify head on a crop of each detected cell", factory=dict)
    describe: List[str] = opt(help="classes whose cells also get the morphology attributes",
                              factory=lambda: ["white blood cell"])
    select: bool = opt(True, "a question's prompt carries only the entries it names (false: "
                       "the whole reading)")
    score_threshold: float = opt(0.4, "detections below this score are not read",
                                 range=(0.0, 1.0))
    crop_size: int = opt(96, "side of the cell crops cut from a field (pixels)",
                         range=(16, 1024))


@dataclass
class ModelConfig:
    """The unified model; `unihema config schema` lists every size."""

    d_model: int = opt(256, "width of visual tokens, fusion and heads", range=(16, 4096))
    tasks: List[TaskName] = opt(
        help="heads to build", factory=lambda: ["detect", "classify", "segment", "morphology",
                                                "mlm", "vqa"])
    pretrained: str = opt("", "a unihema checkpoint directory to initialise from ('' = none)")
    backbone: BackboneConfig = opt(help="convolutional trunk", factory=BackboneConfig)
    encoder: VisualEncoderConfig = opt(help="visual transformer", factory=VisualEncoderConfig)
    text: TextConfig = opt(help="T5 text encoder/decoder", factory=TextConfig)
    fusion: FusionConfig = opt(help="Hema-Former fusion", factory=FusionConfig)
    heads: HeadsConfig = opt(help="task heads", factory=HeadsConfig)
    reading: ReadingConfig = opt(help="the model's reading of an image for its text tasks",
                                 factory=lambda: ReadingConfig())


@dataclass
class Config:
    """The root of every config file."""

    name: str = opt("unihema", "run name, used in logs and reports")
    model: ModelConfig = opt(help="the unified model", factory=ModelConfig)
    data: DataConfig = opt(help="datasets and batching", factory=DataConfig)
    train: TrainConfig = opt(help="optimisation and run folder", factory=TrainConfig)
    synth: SynthConfig = opt(help="the synthetic smear generator", factory=SynthConfig)
