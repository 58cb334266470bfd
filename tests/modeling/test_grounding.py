"""Image grounding end to end: the same question over two images gets each image's answer."""

from __future__ import annotations

import numpy as np
import torch

from unihema.config import load_config
from unihema.data.catalog import load_dataset
from unihema.pipeline.collate import collate
from unihema.pipeline.mapper import DatasetMapper
from unihema.data.sample import QAPair
from unihema.modeling.model import UniHema


QUESTION = "Is there a white blood cell in the image?"


def test_same_question_different_images_different_answers(synth_root, tiny):
    fields = [s for s in load_dataset("synthetic_smear", synth_root, "train")
              if s.meta.get("kind") == "field"]
    answers = {s.sample_id: {q.question: q.answer for q in s.qa}.get(QUESTION) for s in fields}
    yes = next(s for s in fields if answers[s.sample_id] == "yes")
    no = next((s for s in fields if answers[s.sample_id] == "no"), None)
    assert no is not None, "the test generation should hold a field without a white cell"
    for s in (yes, no):
        s.qa = [QAPair(QUESTION, answers[s.sample_id], "presence")]
    cfg = load_config(None, tiny + ["model.tasks=[vqa]"])
    torch.manual_seed(0)
    model = UniHema.from_config(cfg)
    mapper = DatasetMapper.from_config(cfg, train=False)
    batch = collate([mapper(s, "vqa", np.random.default_rng(0), qa_index=0) for s in (yes, no)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(100):
        loss = model(batch)["loss_vqa_ce"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    preds = [p["text"] for p in model.predict(batch)]
    assert preds == ["yes", "no"], preds
    # the prompts are identical: the difference can only come from the images
    assert batch["prompts"][0] == batch["prompts"][1]
