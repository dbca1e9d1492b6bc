import pytest

from provision.commands.ci import ci
from provision.errors import UsageError
from tests.conftest import snapshot


def test_bad_components_are_refused_before_any_host_boots(workspace):
    before = snapshot(workspace.root)
    with pytest.raises(UsageError, match="unknown component"):
        ci(workspace, "base,nope")
    assert snapshot(workspace.root) == before
