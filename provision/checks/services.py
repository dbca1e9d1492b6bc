"""The service assertion the checks share: running now and enabled at boot, each failure
named with where to look."""


def assert_running_and_enabled(host, unit: str, look: str = "") -> None:
    """``look``: where the user finds why (``journalctl -u ollama``)."""
    service = host.service(unit)
    where = f" ({look})" if look else ""
    assert service.is_running, f"{unit}.service is not running{where}"
    assert service.is_enabled, f"{unit}.service is not enabled at boot"
