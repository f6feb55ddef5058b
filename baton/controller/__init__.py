"""The controller: expands events into tasks and ends the attempts of lost workers, one leader
at a time (``loop``)."""

from baton.controller.loop import Controller, ControllerConfig

__all__ = ["Controller", "ControllerConfig"]
