"""rigforge: turn a freshly installed Ubuntu/Debian box into a working AI rig, with plain Ansible."""

__version__ = "0.1.0"
