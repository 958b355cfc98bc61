"""Local fake CRM APIs (loopback only) for connector tests and demos without a CRM account."""

from devkit.fake_servers.base import FakeApiServer, Fault, FaultQueue, Request

__all__ = ["FakeApiServer", "Fault", "FaultQueue", "Request"]
