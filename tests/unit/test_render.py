import jinja2
import pytest

from provision.render import render


def test_a_missing_variable_is_an_error_never_an_empty_string():
    with pytest.raises(jinja2.UndefinedError):
        render("site.yml.j2", {})


def test_site_yml_imports_each_component_playbook_in_the_order_given():
    text = render("site.yml.j2", {"components": ["base", "docker"]})
    assert text.index("playbooks/base.yml") < text.index("playbooks/docker.yml")
