"""Train the unified model: the same entry point as ``unihema train``.

    python tools/train.py --config configs/quick/demo.yaml train.max_steps=200
"""

import sys

from unihema.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
