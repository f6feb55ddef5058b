"""The ``baton`` command. ``main`` holds the group; one module per group of commands (``graphs``,
``events``, ``processes``, ``db``, ``bench``, ``server``, ``dev``), with the options and the
opening of the store (``options``), argument types (``types``) and printing (``show``,
``display``) they share."""
