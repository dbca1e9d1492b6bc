"""Render the workspace templates shipped in ``templates/`` (Jinja2, StrictUndefined)."""

from functools import cache

import jinja2

from provision import assets


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(assets.templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, context: dict) -> str:
    """Render ``templates/<template>``; a missing variable is an error, never an empty string."""
    return _environment().get_template(template).render(**context)
