"""Import at worker start what the processors' first Graph calls would otherwise import lazily.

msgraph-sdk imports each request builder module the first time its property is touched; doing
that inside a job makes a worker's first call of each kind slower than its tenth. Building the
builders once here (dummy ids, no request is sent) moves that cost to startup.
"""

from __future__ import annotations

import logging
import time

from worker.graph.client import GraphClient

log = logging.getLogger("graphworks.warmup")


def preload_graph_paths(graph: GraphClient) -> float:
    """Touch every request builder a processor uses; returns the seconds it took."""
    started = time.perf_counter()
    sdk = graph.sdk
    _ = sdk.chats.by_chat_id("x").messages.by_chat_message_id("x")
    _ = sdk.teams.by_team_id("x").channels.by_channel_id("x").messages.by_chat_message_id("x")
    user = sdk.users.by_user_id("x")
    _ = user.send_mail
    message = user.messages.by_message_id("x")
    _ = message.attachments.create_upload_session
    _ = message.send
    _ = user.mail_folders.by_mail_folder_id("x").messages
    _ = sdk.drives.by_drive_id("x").items.by_drive_item_id("x").content
    # The request machinery itself (RequestInformation, the middleware chain) on its first use.
    import kiota_abstractions.request_information  # noqa: F401
    import kiota_http.middleware  # noqa: F401

    took = time.perf_counter() - started
    log.debug("preloaded Graph request builders in %.3f s", took)
    return took
