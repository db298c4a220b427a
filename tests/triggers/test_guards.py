import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggers.guards import (
    GuardEvaluationError,
    GuardSyntaxError,
    compile_guard,
    guard_passes,
    is_true,
)

DOC = {
    "type": "Create",
    "actor": "https://a.example/users/x",
    "recipient": "http://testserver/actors/demo",
    "to": ["https://www.w3.org/ns/activitystreams#Public", "x"],
    "n": 0,
    "flag": False,
    "object": {
        "type": "Note",
        "content": "hello world",
        "tag": [{"name": "#fedi"}, {"name": "#python"}],
        "sensitive": True,
        "n": 1,
    },
}

EXPRESSIONS = [
    "object.type == 'Note'",
    "'Note' == object.type",
    "object.type != 'Note'",
    "object.type == 'Article' || actor == 'https://a.example/users/x'",
    "contains(object.content, 'hello') && !starts_with(actor, 'https://spam.example/')",
    "ends_with(recipient, '/actors/demo')",
    "length(to) > `1`",
    "length(to) >= `3`",
    "to[0]",
    "to[5]",
    "n",
    "!n",
    "flag",
    "!flag",
    "object.n == `1`",
    "object.sensitive == `true`",
    "n == `false`",
    "object.tag[?name == '#fedi'] | length(@) > `0`",
    "contains(object.tag[].name, '#python')",
    "missing.deeply.nested",
    "object.content < 'z'",
    "object.type < `1`",
    "max(`[1, 5, 3]`) == `5`",
    "type == 'Create' && object.type == 'Note' && contains(to, 'x')",
    "@.type",
    "`{}`",
    "''",
]


def reference(expression: str, document: dict) -> bool | str:
    """JMESPath's own verdict, or "error" where its interpreter raises."""
    try:
        return is_true(jmespath.search(expression, document))
    except Exception:
        return "error"


def compiled(expression: str, document: dict) -> bool | str:
    try:
        return compile_guard(expression).passes(document)
    except GuardEvaluationError:
        return "error"


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_guard_agrees_with_jmespath(expression):
    assert compiled(expression, DOC) == reference(expression, DOC)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "Note", "x"]),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["type", "a", "b"]), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    expression=st.sampled_from(
        [
            "type == 'Note'",
            "a.b",
            "!a",
            "a && b",
            "a || b",
            "a[0]",
            "a == b",
            "a != `0`",
            "a == `true`",
            "a > `0`",
            "type == 'Note' && a",
        ]
    ),
)
def test_compiled_guard_agrees_with_jmespath_on_any_json(value, expression):
    document = {"a": value, "b": value, "type": value}
    assert compiled(expression, document) == reference(expression, document)


@pytest.mark.parametrize(
    "source, message",
    [
        ("object.type ==", "invalid guard"),
        ("object.type = 'Note'", "invalid guard"),
        ("nope(actor)", "unknown function nope()"),
        ("length(a, b)", "length() takes 1"),
        ("to[?nope(@)]", "unknown function nope()"),
        ("__import__('os')", "unknown function __import__()"),
        ("(" * 3000 + "a" + ")" * 3000, "at most 4000 characters"),
        ("(" * 1500 + "a" + ")" * 1500, "nests at most 100 levels"),
        (" || ".join(["a"] * 101), "nests at most 100 levels"),
    ],
)
def test_invalid_guards_are_refused_when_compiled(source, message):
    with pytest.raises(GuardSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_guard(source)


def test_an_empty_guard_always_passes():
    assert compile_guard("").passes({}) is True
    assert compile_guard("   ").passes({}) is True


def test_an_evaluation_error_is_a_failed_guard_with_the_error():
    guard = compile_guard("contains(object.n, 'x')")
    with pytest.raises(GuardEvaluationError):
        guard.passes(DOC)
    passed, error = guard_passes(guard, DOC)
    assert passed is False
    assert "contains" in error


def test_guards_are_compiled_once_per_text():
    assert compile_guard("object.type == 'Note'") is compile_guard("object.type == 'Note'")


def test_required_conditions_are_found_for_the_index():
    guard = compile_guard("object.type == 'Note' && (actor == 'x' || actor == 'y')")
    assert guard.conditions == [("eq", ("object", "type"), "Note")] and not guard.exact
    assert compile_guard("'Note' == object.type").conditions == [("eq", ("object", "type"), "Note")]
    assert compile_guard("'Note' == object.type").exact
    assert compile_guard("object.type == 'Note' || true").conditions == []
    assert compile_guard("n == `1`").conditions == []
    keyword = compile_guard("contains(object.content, 'spam')")
    assert keyword.conditions == [("contains", ("object", "content"), "spam")] and keyword.exact
    both = compile_guard("contains(to, 'x') && length(to) > `1`")
    assert both.conditions == [("contains", ("to",), "x")] and not both.exact


@pytest.mark.parametrize(
    "source, document, error",
    [
        ("floor(to_number(object.content)) > `1`", {"object": {"content": "inf"}}, "Overflow"),
        ("floor(to_number(object.content)) > `1`", {"object": {"content": "nan"}}, "ValueError"),
    ],
)
def test_any_exception_of_a_guard_is_a_failed_guard(source, document, error):
    passed, detail = guard_passes(compile_guard(source), document)
    assert passed is False
    assert error in detail
