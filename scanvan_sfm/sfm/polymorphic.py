"""cereal's polymorphic type ids and shared-pointer ids, shared by the JSON and bin formats.

One type-name table and one pointer table per file, counters from 1; a first occurrence has
bit 31 set (and carries the name or the data), later ones refer back by number.
"""

from collections.abc import Callable
from typing import TypeVar

MSB = 0x80000000
EXACT_TYPE = 0x40000000  # the pointee is exactly the declared type: a plain View
T = TypeVar("T")


class PolymorphicReader:
    def __init__(self, fail: Callable[[str, str], Exception]):
        self._names: dict[int, str] = {}
        self._objects: dict[int, object] = {}
        self._fail = fail

    def type_name(self, pid: int, name: str | None, where: str) -> str | None:
        """The registered name behind ``pid`` (None for an exact-type View)."""
        if pid == EXACT_TYPE:
            return None
        if pid == 0:
            raise self._fail(where, "null pointer (polymorphic_id 0)")
        if pid & MSB:
            self._names[pid & ~MSB] = name  # type: ignore[assignment]
            return name
        if pid not in self._names:
            raise self._fail(where, f"polymorphic_id {pid} refers to no type named before it")
        return self._names[pid]

    def pointee(self, ptr_id: int, build: Callable[[], T], kind: type[T], where: str) -> T:
        """The object of a first occurrence (built now) or of a back-reference."""
        if ptr_id & MSB:
            built = build()
            self._objects[ptr_id & ~MSB] = built
            return built
        obj = self._objects.get(ptr_id)
        if not isinstance(obj, kind):
            raise self._fail(where, f"pointer id {ptr_id} refers to no {kind.__name__} read before it")
        return obj


class PolymorphicWriter:
    def __init__(self) -> None:
        self._names: dict[str, int] = {}
        self._objects: dict[int, int] = {}

    def type_id(self, name: str | None) -> tuple[int, str | None]:
        """(polymorphic_id, name to write or None)."""
        if name is None:
            return EXACT_TYPE, None
        if name in self._names:
            return self._names[name], None
        self._names[name] = len(self._names) + 1
        return self._names[name] | MSB, name

    def pointer_id(self, obj: object) -> tuple[int, bool]:
        """(ptr id, whether the object's data follows)."""
        if id(obj) in self._objects:
            return self._objects[id(obj)], False
        self._objects[id(obj)] = len(self._objects) + 1
        return self._objects[id(obj)] | MSB, True
