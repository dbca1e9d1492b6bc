"""GPU knowledge without side effects: PCI IDs, output parsers, the facts table and the resolver.

Nothing here runs a command or imports click, ansible, paramiko or fabric; the probe and
the CLI call these pure functions with what they collected. Import the submodules
(``provision.gpu.stack``, ``provision.gpu.pci_bus``, ...) directly.
"""
