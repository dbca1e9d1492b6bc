"""The resolver's rules, one module per concern; :func:`provision.gpu.stack.resolve` applies
those of a host's selected components to one stack, through a :class:`~.context.Checker`."""
