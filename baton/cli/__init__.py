"""The ``baton`` command. ``main`` holds the group and the event commands; one module per group
of the rest (``server``, ``dev``), with the options (``options``), argument types (``types``) and
printing (``show``, ``display``) they share."""
