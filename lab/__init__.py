"""racklab: racks of namespace, container and VM nodes running Python big-data services."""

__version__ = "0.1.0"
