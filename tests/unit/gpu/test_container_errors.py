"""provision/gpu/container_errors.py: ``docker run --gpus all`` failures (recorded outputs:
test_recorded_outputs.py)."""

from provision.gpu.container_errors import parse_container_gpu_failure


def test_each_cause_names_a_fix_and_unknown_output_is_none():
    text = 'could not select device driver "nvidia" with capabilities: [[gpu]]'
    failure = parse_container_gpu_failure(text)
    assert (failure.cause, failure.detail) == ("no_gpu_runtime", "nvidia")
    assert "nvidia-ctk runtime configure" in failure.fix
    assert parse_container_gpu_failure("") is None
