"""The unified model: backbone, text encoder, Hema-Former fusion and task heads."""
