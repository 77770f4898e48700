"""graphsim: a Microsoft Graph emulator (ASGI) with Graph's shapes, errors and injectable faults.

Used by tests, the demo and benches. `graphsim.server.run_in_thread()` serves it over real
HTTP; `graphsim.state.SimState` drives it in-process and ``/_sim/*`` over HTTP.
"""

from graphsim.faults import Fault
from graphsim.state import RecordedRequest, SimState

__all__ = ["Fault", "RecordedRequest", "SimState"]
