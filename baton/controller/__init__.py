"""The controller: expands events into tasks and ends the attempts of lost workers, one leader
at a time: a loop (``loop``) over its duties (``duties``)."""

from baton.controller.loop import Controller, ControllerConfig

__all__ = ["Controller", "ControllerConfig"]
