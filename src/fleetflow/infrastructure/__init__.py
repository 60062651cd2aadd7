"""Where flow runs execute: the Infrastructure interface and the local ``Process`` block."""

from .base import Infrastructure, Launcher, LaunchResult, LaunchStatus
from .process import Process

__all__ = ["Infrastructure", "Launcher", "LaunchResult", "LaunchStatus", "Process"]
