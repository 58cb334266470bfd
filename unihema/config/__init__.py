"""Configuration: the typed schema and the YAML loader (``_base_``, overrides, validation)."""

from unihema.config.loader import (
    ConfigError,
    atomic_write_text,
    dump_config,
    load_config,
    schema_table,
    to_dict,
    to_yaml,
)
from unihema.config.schema import (
    AugmentConfig,
    Config,
    DataConfig,
    DatasetEntry,
    SynthConfig,
    TrainConfig,
)

__all__ = [
    "AugmentConfig", "Config", "ConfigError", "DataConfig", "DatasetEntry", "SynthConfig",
    "TrainConfig", "atomic_write_text", "dump_config", "load_config", "schema_table", "to_dict",
    "to_yaml",
]
