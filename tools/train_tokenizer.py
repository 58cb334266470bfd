"""Train the SentencePiece tokenizer shipped in ``unihema/assets/tokenizer``.

    python tools/train_tokenizer.py [--vocab-size 768] [--fields 300] [--out DIR] [--stats]

The corpus is the project's own language, rebuilt deterministically from the library: every
vocabulary term and synonym, the morphology attribute schema, every prompt template rendered
with realistic fields, the sentences and questions of :mod:`unihema.data.text.language`, and the
question/answer pairs and reports of a few hundred seeded synthetic fields. The same library
and sentencepiece versions give a byte-identical ``spiece.model``.

Layout of the model (the T5 convention, which ``transformers.T5Tokenizer`` assumes): ``<pad>``
0, ``</s>`` 1, ``<unk>`` 2, no BOS, and the 100 sentinels ``<extra_id_0>``..``<extra_id_99>``
as user-defined pieces, so each is one token wherever it appears in text. Unlike Google's T5
vocabulary the sentinels sit right after the three specials rather than at the end; code must
look them up by name (``convert_tokens_to_ids``), never by position.

``--stats`` prints the vocabulary size and the mean number of tokens per prompt and per answer
on a fresh synthetic sample (fields not in the training corpus).
"""

from __future__ import annotations

import argparse
import io
import random
import re
import string
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unihema.config.schema import SynthConfig  # noqa: E402
from unihema.data import vocab
from unihema.data.text import language
from unihema.tasks import prompts  # noqa: E402
from unihema.synth import (DETECT_CLASSES, RED_MORPHOLOGIES, SEGMENT_CLASSES,  # noqa: E402
                           WHITE_TYPES, render_field)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "unihema" / "assets" / "tokenizer"
N_SENTINELS = 100
PUNCTUATION = (";", ":", "?", ",", ".", "-", "(", ")")
# Characters that must be single pieces even when rare, so user text in plain ASCII never maps
# to <unk>; a few units common in hematology reports come along.
REQUIRED_CHARS = "".join(c for c in string.printable if not c.isspace()) + "μ×°±"
_LOCATIONS = ("top left", "top center", "top right", "middle left", "center", "middle right",
              "bottom left", "bottom center", "bottom right")


# ----------------------------------------------------------------------------- corpus
def _class_lists(rng: random.Random, n: int) -> Iterator[List[str]]:
    """Class lists as the model meets them: the synthetic sets, categories, random mixtures."""
    pools: List[Sequence[str]] = [DETECT_CLASSES, SEGMENT_CLASSES, WHITE_TYPES, RED_MORPHOLOGIES,
                                  vocab.names()]
    pools += [vocab.names([c]) for c in vocab.CATEGORIES]
    for pool in pools:
        yield list(pool)
    for _ in range(n):
        pool = rng.choice(pools)
        k = rng.randint(1, min(8, len(pool)))
        yield rng.sample(list(pool), k)


def _random_attributes(rng: random.Random) -> Dict[str, str]:
    names = [a for a in vocab.ATTRIBUTES if rng.random() < 0.7]
    return {a: rng.choice(vocab.ATTRIBUTES[a]) for a in names}


def vocabulary_text() -> List[str]:
    """Terms, synonyms, plurals, descriptions and the attribute schema."""
    lines: List[str] = []
    for t in vocab.TERMS:
        lines += [t.name, language.plural(t.name), t.name.capitalize(), *t.synonyms]
        if t.description:
            lines.append(t.description)
    for c in vocab.CATEGORIES:
        lines += [c, language.plural(c)]
    for name, values in vocab.ATTRIBUTES.items():
        lines += [name, name.replace("_", " "), *values]
        lines.append(f"{name.replace('_', ' ')}: {', '.join(values)}")
    return lines


def language_text(rng: random.Random) -> List[str]:
    """Sentences and question/answer pairs of :mod:`unihema.data.text.language`."""
    lines: List[str] = []
    cell_labels: List = [None] + vocab.names(["white cell", "red cell", "platelet"])
    for _ in range(2000):
        lines.append(language.describe_cell(rng.choice(cell_labels), _random_attributes(rng)))
    countable = list(DETECT_CLASSES) + ["red blood cell", "white blood cell"]
    for _ in range(800):
        counts = {c: rng.randint(0, 60) for c in rng.sample(countable, rng.randint(1, 4))}
        reds = {c: rng.randint(0, 12) for c in rng.sample(RED_MORPHOLOGIES[1:], rng.randint(0, 2))}
        whites = rng.sample(list(WHITE_TYPES), rng.randint(0, 3))
        lines.append(language.describe_field(counts, infected=rng.choice([0, 0, 1, 3]),
                                             white_cells=whites, red_morphologies=reds))
    lines.append(language.describe_field({}))
    for name in vocab.names():
        for qa in (language.qa_count(name, rng.randint(0, 200)),
                   language.qa_presence(name, rng.random() < 0.5),
                   language.qa_location(name, rng.choice(_LOCATIONS))):
            lines += [qa.question, qa.answer]
    for kind in ("white blood cell", "red blood cell", "cell", "platelet", "malaria parasite"):
        for name in vocab.names(["white cell", "red cell", "platelet", "parasite"]):
            lines.append(language.qa_type(kind, name).question)
    for name, values in vocab.ATTRIBUTES.items():
        for subject in ("cell", "white blood cell"):
            lines += [language.qa_attribute(name, v, subject).question for v in values[:1]]
    lines += list(_LOCATIONS)
    return lines


def synthetic_text(n_fields: int, seed: int) -> List[str]:
    """Questions, answers and reports of ``n_fields`` seeded synthetic fields and their crops."""
    lines: List[str] = []
    cfg = SynthConfig()
    for i in range(n_fields):
        f = render_field([seed, 9173, i], cfg)
        lines.append(f.report)
        lines += [s for qa in f.qa for s in (qa.question, qa.answer)]
        for crop in f.crops:
            lines.append(crop.report)
            lines += [s for qa in crop.qa for s in (qa.question, qa.answer)]
    return lines


def prompt_text(rng: random.Random, texts: Sequence[str], questions: Sequence[str]) -> List[str]:
    """Every template of every task rendered with realistic fields, plus MLM targets."""
    lines: List[str] = []
    lists = list(_class_lists(rng, 600))
    for task, spec in prompts.PROMPTS.items():
        for template in (spec.eval,) + spec.train:
            for _ in range(8 if spec.fields else 1):
                fields = {}
                if "classes" in spec.fields:
                    fields["classes"] = prompts.CLASS_SEPARATOR.join(rng.choice(lists))
                if "text" in spec.fields:
                    masked, target = language.mask_spans(rng.choice(texts), rng)
                    fields["text"] = masked
                    lines.append(target)
                if "question" in spec.fields:
                    fields["question"] = rng.choice(questions)
                lines.append(template.format(**fields))
    for task in ("detect", "segment", "classify"):
        lines += [prompts.render(task, rng, classes=c) for c in lists]
    for text in texts:
        masked, target = language.mask_spans(text, rng)
        lines += [prompts.render("mlm", rng, text=masked), target]
    for q in questions:
        lines.append(prompts.render("vqa", rng, question=q))
    return lines


def word_list(lines: Sequence[str]) -> List[str]:
    """Every distinct word of ``lines``, one per line, sorted.

    The unigram trainer seeds its vocabulary with maximal repeats that do not cross whitespace;
    a word always followed by the same one ("blood" before "cell") is never a maximal repeat,
    so without this list it ends up split into fragments ("bl", "oo", "d").
    """
    words = {w for s in lines for w in re.findall(r"[^\W_]+|[^\w\s]", s)}
    words |= {w for s in lines for w in s.split()}
    return sorted(words)


def build_corpus(*, n_fields: int = 300, seed: int = 0) -> List[str]:
    """The whole training corpus, one sentence per line, in a fixed order."""
    rng = random.Random(seed)
    lines = vocabulary_text()
    lang = language_text(rng)
    synth = synthetic_text(n_fields, seed)
    sentences = [s for s in lang + synth if len(s.split()) > 3]
    questions = sorted({s for s in lang + synth if s.endswith("?")})
    lines += lang + synth + prompt_text(rng, sentences, questions)
    lines += [str(n) for n in range(201)]
    lines.append(" ".join(PUNCTUATION))
    lines += word_list(lines)
    lines.append(" ".join(language.sentinel(i) for i in range(N_SENTINELS)))
    return [s for s in lines if s.strip()]


# ----------------------------------------------------------------------------- training
def train(corpus: Sequence[str], *, vocab_size: int) -> bytes:
    """Train a unigram SentencePiece model on ``corpus``; returns the serialized model.

    Deterministic: one thread, no sentence shuffling or sampling, and the model is written from
    memory so no file path ends up in its trainer spec.
    """
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        required_chars=REQUIRED_CHARS,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        user_defined_symbols=[language.sentinel(i) for i in range(N_SENTINELS)],
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        max_sentence_length=8192,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return buf.getvalue()


def write(model: bytes, out: Path) -> None:
    """Write ``spiece.model`` plus the tokenizer config T5Tokenizer needs into ``out``.

    The config declares ``extra_ids: 0`` and lists the sentinels as additional special tokens:
    they are already pieces of the model, so the tokenizer must not append 100 more.
    """
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "spiece.model").write_bytes(model)
    config = {
        "tokenizer_class": "T5Tokenizer",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "extra_ids": 0,
        "additional_special_tokens": [language.sentinel(i) for i in range(N_SENTINELS)],
        "model_max_length": 4096,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


# ----------------------------------------------------------------------------- checks
def check(out: Path, corpus: Sequence[str]) -> Dict[str, float]:
    """Load ``out`` through transformers and verify the contract; returns a few numbers."""
    from transformers import T5Tokenizer

    tok = T5Tokenizer.from_pretrained(str(out))
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "spiece.model"))
    problems = []
    if len(tok) != sp.get_piece_size():
        problems.append(f"transformers sees {len(tok)} tokens, the model has "
                        f"{sp.get_piece_size()}")
    if (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) != (0, 1, 2):
        problems.append(f"pad/eos/unk ids are {tok.pad_token_id}/{tok.eos_token_id}/"
                        f"{tok.unk_token_id}, expected 0/1/2")
    for i in (0, 1, 99):
        ids = tok(language.sentinel(i), add_special_tokens=False).input_ids
        if len(ids) != 1:
            problems.append(f"{language.sentinel(i)} is {len(ids)} tokens")
    unk = [s for s in corpus if tok.unk_token_id in tok(s, add_special_tokens=False).input_ids]
    if unk:
        problems.append(f"{len(unk)} corpus lines contain <unk>, e.g. {unk[:3]}")
    if problems:
        raise SystemExit("tokenizer check failed:\n  " + "\n  ".join(problems))
    return {"vocab_size": len(tok)}


def stats(out: Path, n_fields: int = 50) -> Dict[str, str]:
    """Mean tokens (``</s>`` included) and words per prompt and per answer, by task, on fields
    NOT in the training corpus."""
    from transformers import T5Tokenizer

    tok = T5Tokenizer.from_pretrained(str(out))
    rng = random.Random(1)
    pairs: Dict[str, List] = {"vqa": [], "morphology": [], "mlm": [], "detect": [],
                              "classify": []}
    for i in range(n_fields):
        f = render_field([12345, 7, i], SynthConfig())
        pairs["vqa"] += [(prompts.render("vqa", rng, question=qa.question), qa.answer)
                         for qa in f.qa]
        for crop in f.crops:
            pairs["morphology"].append((prompts.render("morphology", rng), crop.report))
            pairs["classify"].append((prompts.render("classify", rng, classes=crop.label_set),
                                      crop.label))
        masked, target = language.mask_spans(f.report, rng)
        pairs["mlm"].append((prompts.render("mlm", rng, text=masked), target))
        pairs["detect"].append((prompts.render("detect", rng, classes=list(DETECT_CLASSES)), ""))

    def mean(texts, words=False):
        n = [len(t.split()) if words else len(tok(t).input_ids) for t in texts]
        return sum(n) / max(1, len(n))

    rows = {"vocab_size": str(len(tok))}
    everything = [p for v in pairs.values() for p in v]
    for task, items in list(pairs.items()) + [("all", everything)]:
        p, a = [x[0] for x in items], [x[1] for x in items if x[1]]
        rows[task] = (f"{len(items)} pairs; prompt {mean(p):.1f} tokens ({mean(p, True):.1f} "
                      f"words), answer {mean(a):.1f} tokens ({mean(a, True):.1f} words)")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, default=768,
                    help="most pieces, sentinels included (fewer when the corpus supports fewer)")
    ap.add_argument("--fields", type=int, default=300, help="synthetic fields in the corpus")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output tokenizer directory")
    ap.add_argument("--stats", action="store_true", help="print tokens per prompt/answer")
    args = ap.parse_args(argv)

    corpus = build_corpus(n_fields=args.fields, seed=args.seed)
    model = train(corpus, vocab_size=args.vocab_size)
    out = Path(args.out)
    # Check in a scratch folder first so a failed check never replaces the shipped tokenizer.
    with tempfile.TemporaryDirectory() as tmp:
        write(model, Path(tmp))
        info = check(Path(tmp), corpus)
    write(model, out)
    print(f"wrote {out / 'spiece.model'}: {info['vocab_size']} pieces, "
          f"{len(model) / 1024:.0f} KiB, corpus {len(corpus)} lines")
    if args.stats:
        for k, v in stats(out).items():
            print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
