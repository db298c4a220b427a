"""Guards: JMESPath expressions compiled to plain Python closures.

A guard is a JMESPath expression (https://jmespath.org) evaluated against the activity JSON,
with ``actor`` set to the verified sender's id and ``recipient`` to the local recipient's
id. The trigger fires when the result is true in JMESPath's sense (not ``null``, ``false``,
``''``, ``[]`` or ``{}``). Examples::

    object.type == 'Note'
    contains(object.content, 'hello') && !starts_with(actor, 'https://spam.example/')
    length(to) > `1`

JMESPath can only read the JSON it is given: no names, attributes or calls of Python
objects, so operator input is never executed. Its tree interpreter costs ~12 µs per
evaluation, which is 12 ms for a thousand guards; so the common node types (fields,
comparisons, and/or/not, literals, indexes, function calls) are compiled once into nested
closures that cost about a microsecond, and any rarer node (projections, filters, slices,
multi-selects, …) is handed to JMESPath's own interpreter, so the language stays whole.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jmespath
from jmespath import exceptions as jp_errors
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor

Evaluator = Callable[[Any], Any]

_INTERPRETER = jp_visitor.TreeInterpreter()
_FUNCTIONS = jp_functions.Functions()
# Limits on what an operator may save: a guard is a condition, not a program, and a deeply
# nested one would exhaust Python's recursion limit when parsed, compiled or evaluated.
MAX_GUARD_LENGTH = 4000
MAX_GUARD_DEPTH = 100
_TOO_DEEP = f"a guard nests at most {MAX_GUARD_DEPTH} levels deep"
_ORDERING = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


class GuardSyntaxError(ValueError):
    """The guard is not a valid expression; it is refused when the trigger is saved."""


class GuardEvaluationError(ValueError):
    """The guard raised while evaluated (a function given the wrong type, …)."""


def is_true(value: Any) -> bool:
    """JMESPath truth: 0 is true, empty strings and collections are false."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


class Guard:
    """A compiled guard; call ``passes(document)``.

    ``conditions`` are the simple tests it requires (see ``required_conditions``); the
    trigger index files the guard under the first. ``exact``: that test is the whole guard.
    """

    __slots__ = ("_evaluate", "conditions", "exact", "source")

    def __init__(
        self,
        source: str,
        evaluate: Evaluator,
        conditions: list[Condition] | None = None,
        exact: bool = False,
    ):
        self.source = source
        self._evaluate = evaluate
        self.conditions = conditions or []
        self.exact = exact

    def passes(self, document: dict) -> bool:
        """True when the guard holds; raises ``GuardEvaluationError`` if evaluating failed."""
        try:
            return is_true(self._evaluate(document))
        except jp_errors.JMESPathError as exc:
            raise GuardEvaluationError(str(exc)) from None
        except Exception as exc:
            # Whatever an operator's guard raises on some peer's JSON (floor() of an
            # infinity: OverflowError, …) is that guard failing, never the caller's batch.
            raise GuardEvaluationError(f"{type(exc).__name__}: {exc}") from None

    def __repr__(self) -> str:
        return f"Guard({self.source!r})"


ALWAYS = Guard("", lambda document: True)


PASSED, FAILED = (True, None), (False, None)


def guard_passes(guard: Guard, document: dict) -> tuple[bool, str | None]:
    """(passed, error): an error while evaluating counts as failed and is returned, not raised.

    The common verdicts are shared constants, so callers may test ``is``.
    """
    try:
        return PASSED if guard.passes(document) else FAILED
    except GuardEvaluationError as exc:
        return False, str(exc)


@functools.lru_cache(maxsize=4096)
def compile_guard(source: str) -> Guard:
    """Compile a guard once; the same text gives the same (cached) ``Guard``."""
    source = (source or "").strip()
    if not source:
        return ALWAYS
    if len(source) > MAX_GUARD_LENGTH:
        raise GuardSyntaxError(f"a guard is at most {MAX_GUARD_LENGTH} characters")
    try:
        tree = jmespath.compile(source).parsed
    except jp_errors.JMESPathError as exc:
        raise GuardSyntaxError(f"invalid guard {source!r}: {_one_line(exc)}") from None
    except RecursionError:  # JMESPath's parser recurses once per nesting level
        raise GuardSyntaxError(_TOO_DEEP) from None
    if _depth(tree) > MAX_GUARD_DEPTH:  # compiling and evaluating recurse the same way
        raise GuardSyntaxError(_TOO_DEEP)
    _check_functions(tree)
    conditions = required_conditions(tree)
    exact = tree["type"] in ("comparator", "function_expression") and bool(conditions)
    return Guard(source, _compile(tree), conditions, exact)


def _depth(tree: dict) -> int:
    """How deeply the parsed expression nests (iteratively: the tree may be deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend(
            (child, depth + 1) for child in node.get("children", ()) if isinstance(child, dict)
        )
    return deepest


def _check_functions(node: dict) -> None:
    """Refuse unknown functions and wrong arities anywhere in the tree, at save time."""
    if node.get("type") == "function_expression":
        name = node["value"]
        spec = _FUNCTIONS.FUNCTION_TABLE.get(name)
        if spec is None:
            raise GuardSyntaxError(f"unknown function {name}()")
        signature, given = spec["signature"], len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic")
        if given < len(signature) if variadic else given != len(signature):
            raise GuardSyntaxError(f"{name}() takes {len(signature)} argument(s), not {given}")
    for child in node.get("children", ()):
        if isinstance(child, dict):
            _check_functions(child)


def _one_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _compile(node: dict) -> Evaluator:
    compiler = _COMPILERS.get(node["type"])
    if compiler is None:
        return _interpreted(node)
    return compiler(node)


def _interpreted(node: dict) -> Evaluator:
    visit = _INTERPRETER.visit
    return lambda value: visit(node, value)


def _field(node: dict) -> Evaluator:
    name = node["value"]

    def field(value):
        return value.get(name) if isinstance(value, dict) else None

    return field


def _subexpression(node: dict) -> Evaluator:
    steps = [_compile(child) for child in node["children"]]
    # The common a.b.c of plain fields: one loop, no nested calls.
    if all(child["type"] == "field" for child in node["children"]):
        names = [child["value"] for child in node["children"]]

        def path(value):
            for name in names:
                if not isinstance(value, dict):
                    return None
                value = value.get(name)
            return value

        return path

    def chain(value):
        for step in steps:
            if value is None:
                return None
            value = step(value)
        return value

    return chain


def _literal(node: dict) -> Evaluator:
    constant = node["value"]
    return lambda value: constant


def _current(node: dict) -> Evaluator:
    return lambda value: value


def _comparator(node: dict) -> Evaluator:
    left, right = (_compile(child) for child in node["children"])
    op = node["value"]
    constant = _string_literal(node)
    if op == "eq" and constant is not None:
        # The commonest guard, `path == 'text'`: a string never equals a bool or a number,
        # so plain == is JMESPath's equality here.
        other = _compile(_other_side(node))
        return lambda value: other(value) == constant
    if op in ("eq", "ne"):
        negate = op == "ne"

        def equality(value):
            return jp_visitor._equals(left(value), right(value)) != negate

        return equality
    compare = _ORDERING[op]
    right_node = node["children"][1]
    if right_node["type"] == "literal" and type(right_node["value"]) in (int, float):
        # `length(x) > `3`` and the like: a number on the right, test the left's type only.
        bound = right_node["value"]

        def against_number(value):
            a = left(value)
            if type(a) in (int, float):
                return compare(a, bound)
            return compare(a, bound) if jp_visitor._is_comparable(a) else None

        return against_number

    def ordering(value):
        a, b = left(value), right(value)
        if not (jp_visitor._is_comparable(a) and jp_visitor._is_comparable(b)):
            return None
        return compare(a, b)

    return ordering


def _string_literal(node: dict) -> str | None:
    """The string literal side of a comparison, if it has one."""
    for child in node["children"]:
        if child["type"] == "literal" and isinstance(child["value"], str):
            return child["value"]
    return None


def _other_side(node: dict) -> dict:
    left, right = node["children"]
    return right if left["type"] == "literal" and isinstance(left["value"], str) else left


def field_path(node: dict) -> tuple[str, ...] | None:
    """The field names of a plain path (``a``, ``a.b.c``), or None for anything else."""
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] == "subexpression" and all(c["type"] == "field" for c in node["children"]):
        return tuple(c["value"] for c in node["children"])
    return None


class Condition(NamedTuple):
    """A test a guard requires: ``path == 'text'`` (``eq``) or ``contains(path, 'text')``."""

    kind: str
    path: tuple[str, ...]
    text: str


def required_conditions(node: dict) -> list[Condition]:
    """Conditions that must hold for the whole guard to be true.

    A comparison of a plain path with a string literal is one, so is ``contains`` of a plain
    path and a string literal; an ``&&`` requires those of both sides. The trigger index
    files a guard under one of them, so that a thousand guards on different values cost a
    dictionary look-up (or a substring test each), not a thousand evaluations.
    """
    if node["type"] == "comparator" and node["value"] == "eq":
        constant = _string_literal(node)
        path = field_path(_other_side(node)) if constant is not None else None
        return [Condition("eq", path, constant)] if path else []
    if node["type"] == "function_expression" and node["value"] == "contains":
        subject, needle = node["children"]
        path = field_path(subject)
        return [Condition("contains", path, needle["value"])] if path and _is_text(needle) else []
    if node["type"] == "and_expression":
        return required_conditions(node["children"][0]) + required_conditions(node["children"][1])
    return []


def _and(node: dict) -> Evaluator:
    left, right = (_compile(child) for child in node["children"])

    def both(value):
        matched = left(value)
        return right(value) if is_true(matched) else matched

    return both


def _or(node: dict) -> Evaluator:
    left, right = (_compile(child) for child in node["children"])

    def either(value):
        matched = left(value)
        return matched if is_true(matched) else right(value)

    return either


def _not(node: dict) -> Evaluator:
    (inner,) = (_compile(child) for child in node["children"])

    def negation(value):
        result = inner(value)
        if jp_visitor._is_actual_number(result) and result == 0:
            return False  # JMESPath: !0 is false
        return not is_true(result)

    return negation


def _index_expression(node: dict) -> Evaluator:
    base_node, index_node = node["children"]
    if index_node["type"] != "index":
        return _interpreted(node)
    base = _compile(base_node)
    position = index_node["value"]

    def index(value):
        items = base(value)
        if not isinstance(items, list):
            return None
        try:
            return items[position]
        except IndexError:
            return None

    return index


def _function(node: dict) -> Evaluator:
    name = node["value"]  # known, with the right arity: _check_functions saw it
    if any(child["type"] == "expref" for child in node["children"]):
        return _interpreted(node)  # sort_by(…, &key) and friends need the interpreter
    arguments = [_compile(child) for child in node["children"]]
    fast = _FAST_FUNCTIONS.get(name)
    call = _FUNCTIONS.call_function
    if fast is not None and len(arguments) == 2 and _is_text(node["children"][1]):
        # contains(path, 'text') and friends, the usual keyword guard: no argument list.
        subject, text = arguments[0], node["children"][1]["value"]

        def with_text(value):
            a = subject(value)
            if isinstance(a, str):
                return fast(a, text)
            return call(name, [a, text])  # lists, and JMESPath's errors for the rest

        return with_text
    if fast is not None and len(arguments) == 2:
        first, second = arguments

        def binary(value):
            a, b = first(value), second(value)
            result = fast(a, b)
            return call(name, [a, b]) if result is _NOT_FAST else result

        return binary

    def function(value):
        args = [argument(value) for argument in arguments]
        if fast is not None:
            result = fast(*args)
            if result is not _NOT_FAST:
                return result
        return call(name, args)  # checks the types and raises JMESPath's error

    return function


_NOT_FAST = object()


def _is_text(node: dict) -> bool:
    return node["type"] == "literal" and isinstance(node["value"], str)


def _contains(subject, search):
    if isinstance(subject, list | str) and (isinstance(subject, list) or isinstance(search, str)):
        return search in subject
    return _NOT_FAST


def _starts_with(subject, prefix):
    if isinstance(subject, str) and isinstance(prefix, str):
        return subject.startswith(prefix)
    return _NOT_FAST


def _ends_with(subject, suffix):
    if isinstance(subject, str) and isinstance(suffix, str):
        return subject.endswith(suffix)
    return _NOT_FAST


def _length(subject):
    if isinstance(subject, str | list | dict):
        return len(subject)
    return _NOT_FAST


# Plain-Python versions of the hottest functions for well-typed arguments; anything else
# falls through to JMESPath, which applies its own rules and errors.
_FAST_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": _contains,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "length": _length,
}

_COMPILERS: dict[str, Callable[[dict], Evaluator]] = {
    "field": _field,
    "subexpression": _subexpression,
    "literal": _literal,
    "current": _current,
    "comparator": _comparator,
    "and_expression": _and,
    "or_expression": _or,
    "not_expression": _not,
    "index_expression": _index_expression,
    "function_expression": _function,
}
