"""YAML loading that remembers where every value came from.

PyYAML's composer gives each node its position; we build plain Python data and a
map from each value's path (("nodes", "n4", "memory")) to its 1-based line, so a
later check can say which line of the file is wrong.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import TopologyError

Path_ = tuple  # a path of keys and list indexes


class Source:
    def __init__(self, file: str, data: object, lines: dict[Path_, int], text: str = ""):
        self.file, self.data, self.lines, self.text = file, data, lines, text

    def line(self, path: Path_) -> int | None:
        # The nearest ancestor that has a line: a missing field is reported at its parent.
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, message: str) -> TopologyError:
        return TopologyError(self.file, self.line(path), dotted(path), message)


def dotted(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def load(path: str | Path) -> Source:
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TopologyError(file, None, "", f"cannot read the file: {e.strerror}") from None
    return loads(text, file)


def loads(text: str, file: str = "<topology>") -> Source:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise TopologyError(file, line, "", f"not valid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise TopologyError(file, None, "", f"not valid YAML: {e}") from None
    if root is None:
        raise TopologyError(file, 1, "", "the file is empty")
    lines: dict[Path_, int] = {}
    data = _build(root, (), lines, file)
    return Source(file, data, lines, text)


def _build(node: yaml.Node, path: Path_, lines: dict, file: str) -> object:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise TopologyError(
                    file,
                    knode.start_mark.line + 1,
                    ".".join(map(str, path)),
                    "mapping keys must be plain names",
                )
            key = knode.value
            if key in out:
                raise TopologyError(
                    file, knode.start_mark.line + 1, dotted(path + (key,)), "given twice"
                )
            out[key] = _build(vnode, path + (key,), lines, file)
            lines[path + (key,)] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, file) for i, v in enumerate(node.value)]
    # Scalars: let the safe constructor resolve ints, floats, bools, null.
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.constructor.SafeConstructor()
