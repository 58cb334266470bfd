"""Train the unified model: the same entry point as ``unihema train``.

    python tools/train.py --config configs/quick/demo.yaml train.max_steps=200
    torchrun --nproc_per_node 4 tools/train.py --config CFG
    deepspeed tools/train.py --config CFG --deepspeed configs/deepspeed/zero2.json
    python tools/train.py --config CFG --resume auto

See docs/training.md.
"""

import sys

from unihema.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
