"""Profiling: FLOPs / params of symbol graphs (docs/design.md, section 5), lookup tables,
MicroNet scores."""
from .graph import load_symbol, parse_data_shapes
from .symbolic import (DEFAULT_MODEL_CONFIG, MODEL_CONFIG_KEYS, LayerCount, SymbolCount,
                       build_symbol, count_symbol, count_symbol_file)
from .lookup_table import CACHE_ENV, LookupTable, default_cache_dir
from .micronet import MOBILENET_V2_14, MicroNetOp, MicroNetProfile, micronet_profile
from .api import METHODS, count_flops_params
from .counter import FlopsCounter

__all__ = ["load_symbol", "parse_data_shapes", "DEFAULT_MODEL_CONFIG", "MODEL_CONFIG_KEYS",
           "LayerCount", "SymbolCount", "build_symbol", "count_symbol", "count_symbol_file",
           "CACHE_ENV", "LookupTable", "default_cache_dir", "MOBILENET_V2_14", "MicroNetOp",
           "MicroNetProfile", "micronet_profile", "METHODS", "count_flops_params",
           "FlopsCounter"]
