"""graphsim's mutable state: active faults, recorded requests and stored Graph data.

The server runs in its own thread (or process) while tests drive it, so every access goes
through one lock and reads hand out copies.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphsim import resources
from graphsim.delta_store import DeltaStore
from graphsim.faults import Fault
from graphsim.files import FileStore
from graphsim.identity import IdentityStore
from graphsim.limits import LimitEnforcer
from graphsim.subscriptions import SubscriptionStore


@dataclass(frozen=True)
class RecordedRequest:
    """One request graphsim received on a Graph route, and what it answered.

    `path` has the ``/v1.0`` prefix stripped; `headers` has lower-case names (Authorization
    included, so tests can check the token); `body` is the parsed JSON or None;
    `status` is 0 when a reset fault dropped the connection without an answer.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_size: int
    status: int
    at: float
    request_id: str
    client_request_id: str


@dataclass
class _ActiveFault:
    fault: Fault
    remaining: int | None


@dataclass(frozen=True)
class SentMail:
    """A message accepted by ``POST /users/{id}/sendMail``."""

    user_id: str
    message: dict[str, Any]
    save_to_sent_items: bool
    id: str
    at: float = field(default_factory=time.time)


class SimState:
    """Everything graphsim remembers between requests; safe to use from any thread."""

    def __init__(self, expected_token: str | None = None) -> None:
        self._lock = threading.Lock()
        self.expected_token: str | None = expected_token
        self._faults: list[_ActiveFault] = []
        self._requests: list[RecordedRequest] = []
        self._mail: dict[tuple[str, str], dict[str, Any]] = {}
        self._chat: dict[tuple[str, str], dict[str, Any]] = {}
        self._channel: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._sent: list[SentMail] = []
        self._last_message_ms = 0
        self.delta = DeltaStore()  # delta-query collections, change logs and tokens
        self.files = FileStore()  # drive items, mail drafts, upload sessions
        self.identity = IdentityStore()  # the fake token endpoint's grants
        self.subscriptions = SubscriptionStore()  # /subscriptions and notification firing
        self.limits = LimitEnforcer()  # throttling with 429 + Retry-After, off until set

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget faults, recorded requests, stored data and the expected token."""
        with self._lock:
            self.expected_token = None
            self._faults.clear()
            self._requests.clear()
            self._mail.clear()
            self._chat.clear()
            self._channel.clear()
            self._sent.clear()
        self.delta.reset()
        self.files.reset()
        self.identity.reset()
        self.subscriptions.reset()
        self.limits.reset()

    # -- faults ------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Append a fault; faults are consulted in the order they were added."""
        with self._lock:
            self._faults.append(_ActiveFault(fault.model_copy(), fault.times))

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        """The active faults, each with `times` set to what is left of it."""
        with self._lock:
            return [a.fault.model_copy(update={"times": a.remaining}) for a in self._faults]

    def take_fault(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> Fault | None:
        """The first active fault matching the request, spending one of its `times`."""
        with self._lock:
            for index, active in enumerate(self._faults):
                if not active.fault.matches(method, path, headers):
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining <= 0:
                        del self._faults[index]
                return active.fault
        return None

    # -- recorded requests -------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Keep one request (called by the graph layer before the answer leaves)."""
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # -- ids ---------------------------------------------------------------------------------

    def next_message_id(self) -> str:
        """A Teams message id: epoch milliseconds as Graph uses, unique within this state."""
        with self._lock:
            self._last_message_ms = max(int(time.time() * 1000), self._last_message_ms + 1)
            return str(self._last_message_ms)

    # -- Teams messages ----------------------------------------------------------------------

    def seed_chat_message(self, chat_id: str, message: dict[str, Any]) -> str:
        """Store a chat message (Graph defaults filled in) so GET returns it; its id."""
        message_id = str(message.get("id") or self.next_message_id())
        stored = resources.chat_message(message_id, message, chat_id=chat_id)
        self.put_chat_message(chat_id, stored)
        return message_id

    def put_chat_message(self, chat_id: str, message: dict[str, Any]) -> None:
        """Store a complete chatMessage resource under its id."""
        with self._lock:
            self._chat[(chat_id, str(message["id"]))] = copy.deepcopy(message)

    def chat_message(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        """A stored chat message, or None."""
        with self._lock:
            found = self._chat.get((chat_id, message_id))
            return copy.deepcopy(found) if found is not None else None

    def put_channel_message(self, team_id: str, channel_id: str, message: dict[str, Any]) -> None:
        """Store a complete channel chatMessage resource under its id."""
        with self._lock:
            self._channel[(team_id, channel_id, str(message["id"]))] = copy.deepcopy(message)

    def channel_message(self, team_id: str, channel_id: str, message_id: str) -> dict[str, Any] | None:
        """A stored channel message, or None."""
        with self._lock:
            found = self._channel.get((team_id, channel_id, message_id))
            return copy.deepcopy(found) if found is not None else None

    # -- mail --------------------------------------------------------------------------------

    def seed_mail_message(self, user_id: str, message: dict[str, Any]) -> str:
        """Store a mail message in `user_id`'s mailbox (defaults filled in); its id."""
        message_id = str(message.get("id") or resources.new_mail_id())
        self.put_mail_message(user_id, resources.mail_message(message_id, message))
        return message_id

    def put_mail_message(self, user_id: str, message: dict[str, Any]) -> None:
        """Store a complete message resource; mailbox names are case-insensitive."""
        with self._lock:
            self._mail[(user_id.lower(), str(message["id"]))] = copy.deepcopy(message)

    def mail_message(self, user_id: str, message_id: str) -> dict[str, Any] | None:
        """A stored mail message, or None."""
        with self._lock:
            found = self._mail.get((user_id.lower(), message_id))
            return copy.deepcopy(found) if found is not None else None

    def add_sent_mail(self, sent: SentMail) -> None:
        """Remember a message accepted by sendMail."""
        with self._lock:
            self._sent.append(sent)

    def sent_mail(self) -> list[SentMail]:
        """Messages accepted by sendMail, oldest first."""
        with self._lock:
            return list(self._sent)
