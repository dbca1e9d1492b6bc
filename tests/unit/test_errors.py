from provision import errors


def test_each_error_carries_its_exit_code_and_hint():
    assert errors.UsageError("bad", hint="fix").exit_code == errors.EXIT_USAGE == 2
    assert errors.WorkspaceError("x").exit_code == 2 and errors.SandboxSetupError("x").exit_code == 2
    assert errors.HostFailedError("x").exit_code == errors.EXIT_FAILED == 1
    assert errors.SandboxError("x").exit_code == 1 and errors.DeclinedError("x").exit_code == 1
    assert str(errors.UsageError("bad", hint="fix")) == "bad\n  hint: fix"
    assert str(errors.UsageError("bad")) == "bad"
