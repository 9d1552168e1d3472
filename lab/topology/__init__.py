"""The lab file: schema, validation with line-numbered errors, defaults."""

from .errors import TopologyError
from .model import NodeDef, Topology, labid_of, load, loads

__all__ = ["NodeDef", "Topology", "TopologyError", "labid_of", "load", "loads"]
