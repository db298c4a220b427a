"""What a host project gets from an installed fedsx: the templates travel with the package."""

from pathlib import Path

from django.template.backends.django import DjangoTemplates

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_every_template_is_found_through_the_installed_apps_alone():
    # A host project's settings know nothing of this checkout's templates/ directory: the
    # templates must be found by the app directories loader, as in an installed wheel.
    engine = DjangoTemplates({"NAME": "host", "DIRS": [], "APP_DIRS": True, "OPTIONS": {}}).engine
    names = sorted(path.relative_to(TEMPLATES).as_posix() for path in TEMPLATES.rglob("*.html"))
    assert "fedsx/actor.html" in names
    for name in names:
        assert engine.get_template(name).origin.name.endswith(name)
