"""graphsim's drive, upload-session, draft and token routes behave as Graph documents them."""

from __future__ import annotations

import httpx

from graphsim.faults import Fault
from graphsim.server import SimServer

AUTH = {"Authorization": "Bearer t"}
FRAG = 327_680


def _session(sim: SimServer, path: str = "docs/a.bin") -> str:
    r = httpx.post(f"{sim.base_url}/drives/d1/root:/{path}:/createUploadSession", json={}, headers=AUTH)
    assert r.status_code == 200 and r.json()["nextExpectedRanges"] == ["0-"]
    return str(r.json()["uploadUrl"])


def _put(url: str, data: bytes, start: int, total: int, headers: dict[str, str] | None = None) -> httpx.Response:
    rng = {"Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}"}
    return httpx.put(url, content=data, headers={**rng, **(headers or {})})


def test_drive_upload_session_fragments_then_item(graphsim: SimServer) -> None:
    data = bytes(range(256)) * (FRAG * 2 // 256) + b"tail"
    url = _session(graphsim)
    first = _put(url, data[:FRAG], 0, len(data))
    assert first.status_code == 202 and first.json()["nextExpectedRanges"] == [f"{FRAG}-"]
    assert httpx.get(url).json()["nextExpectedRanges"] == [f"{FRAG}-"]
    assert _put(url, data[FRAG : 2 * FRAG], FRAG, len(data)).status_code == 202
    done = _put(url, data[2 * FRAG :], 2 * FRAG, len(data))
    assert done.status_code == 201 and done.json()["size"] == len(data) and done.json()["name"] == "a.bin"
    assert graphsim.state.files.item_at("d1", "docs/a.bin").content == data  # type: ignore[union-attr]
    assert httpx.get(url).status_code == 404, "a finished session is gone"


def test_overlapping_fragment_is_416_and_bad_sizes_are_400(graphsim: SimServer) -> None:
    url = _session(graphsim)
    total = FRAG * 3
    assert _put(url, b"x" * FRAG, 0, total).status_code == 202
    again = _put(url, b"x" * FRAG, 0, total)
    assert again.status_code == 416 and again.json()["error"]["code"] == "invalidRange"
    assert _put(url, b"x" * 1000, FRAG, total).status_code == 400, "non-final fragment not a 320 KiB multiple"


def test_expired_session_is_404_and_auth_header_is_refused(graphsim: SimServer) -> None:
    url = _session(graphsim)
    assert _put(url, b"x" * FRAG, 0, FRAG * 2, headers=AUTH).status_code == 401
    graphsim.state.files.expire_sessions()
    assert _put(url, b"x" * FRAG, 0, FRAG * 2).status_code == 404


def test_faults_apply_to_upload_urls(graphsim: SimServer) -> None:
    url = _session(graphsim)
    graphsim.state.add_fault(Fault(method="PUT", path="/_uploads/*", status=429, retry_after="3"))
    r = _put(url, b"x" * FRAG, 0, FRAG * 2)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert [q.path.startswith("/_uploads/") for q in graphsim.state.requests()][-1]


def test_small_put_get_redirect_download_and_delete(graphsim: SimServer) -> None:
    base = f"{graphsim.base_url}/drives/d1/root:/x/y.txt:"
    assert httpx.put(f"{base}/content", content=b"hello", headers=AUTH).status_code == 201
    assert httpx.put(f"{base}/content", content=b"hello2", headers=AUTH).status_code == 200
    r = httpx.get(f"{base}/content", headers=AUTH)
    assert r.status_code == 302 and "/v1.0/_downloads/" in r.headers["location"]
    assert httpx.get(r.headers["location"]).content == b"hello2"
    item = httpx.get(base, headers=AUTH).json()
    assert httpx.get(f"{graphsim.base_url}/drives/d1/items/{item['id']}", headers=AUTH).json()["size"] == 6
    fail = httpx.put(f"{base}/content?%40microsoft.graph.conflictBehavior=fail", content=b"z", headers=AUTH)
    assert fail.status_code == 409
    assert httpx.delete(base, headers=AUTH).status_code == 204
    assert httpx.delete(base, headers=AUTH).status_code == 404


def test_mail_draft_upload_session_and_send(graphsim: SimServer) -> None:
    users = f"{graphsim.base_url}/users/ops@contoso.com/messages"
    draft = httpx.post(users, json={"subject": "S", "toRecipients": []}, headers=AUTH).json()
    item = {"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": 5_000_000}}
    session = httpx.post(f"{users}/{draft['id']}/attachments/createUploadSession", json=item, headers=AUTH)
    assert session.status_code == 201 and session.json()["nextExpectedRanges"] == ["0"]
    url = session.json()["uploadUrl"]
    assert _put(url, b"a" * 4_500_000, 0, 5_000_000).status_code == 413, "Outlook fragments are at most 4 MB"
    step = _put(url, b"a" * 3_000_000, 0, 5_000_000)
    assert step.status_code == 200 and step.json()["nextExpectedRanges"] == ["3000000"]
    last = _put(url, b"a" * 2_000_000, 3_000_000, 5_000_000)
    assert last.status_code == 201 and "Attachments(" in last.headers["location"]
    assert httpx.post(f"{users}/{draft['id']}/send", headers=AUTH).status_code == 202
    (sent,) = graphsim.state.sent_mail()
    assert [a["size"] for a in sent.message["attachments"]] == [5_000_000]


def test_token_endpoint_rotates_refresh_tokens(graphsim: SimServer) -> None:
    rt = graphsim.state.identity.issue_refresh_token("ann@contoso.com")
    form = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": "c", "scope": "s"}
    r = httpx.post(f"{graphsim.root_url}/tenant-1/oauth2/v2.0/token", data=form)
    assert r.status_code == 200 and r.json()["access_token"].startswith("at.")
    assert r.json()["refresh_token"] != rt
    bad = httpx.post(f"{graphsim.root_url}/tenant-1/oauth2/v2.0/token", data={**form, "refresh_token": "nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_a_lost_fragment_is_listed_even_on_the_last_put_until_it_is_sent_again(graphsim: SimServer) -> None:
    data = bytes(range(256)) * (FRAG * 2 // 256) + b"tail"
    total = len(data)
    url = _session(graphsim)
    graphsim.state.add_fault(
        Fault(method="PUT", path="/_uploads/*", kind="lose", lose=(0, FRAG - 1),
              headers={"content-range": f"bytes *-{total - 1}/{total}"})
    )  # fmt: skip
    assert _put(url, data[:FRAG], 0, total).status_code == 202
    assert _put(url, data[FRAG : 2 * FRAG], FRAG, total).status_code == 202
    last = _put(url, data[2 * FRAG :], 2 * FRAG, total)
    assert (last.status_code, last.json()["nextExpectedRanges"]) == (202, [f"0-{FRAG - 1}"]), "not done: 0 was lost"
    assert httpx.get(url).json()["nextExpectedRanges"] == [f"0-{FRAG - 1}"]
    assert _put(url, data[FRAG : 2 * FRAG], FRAG, total).status_code == 416, "what arrived is not taken twice"
    done = _put(url, data[:FRAG], 0, total)
    assert done.status_code == 201 and done.json()["size"] == total
    assert graphsim.state.files.item_at("d1", "docs/a.bin").content == data  # type: ignore[union-attr]


def test_several_missing_ranges_and_the_outlook_forms(graphsim: SimServer) -> None:
    users = f"{graphsim.base_url}/users/ops@contoso.com/messages"
    draft = httpx.post(users, json={"subject": "S", "toRecipients": []}, headers=AUTH).json()
    item = {"AttachmentItem": {"attachmentType": "file", "name": "a.bin", "size": 4000}}
    url = httpx.post(f"{users}/{draft['id']}/attachments/createUploadSession", json=item, headers=AUTH).json()[
        "uploadUrl"
    ]
    assert _put(url, b"a" * 1000, 0, 4000).json()["nextExpectedRanges"] == ["1000"]
    graphsim.state.add_fault(Fault(method="PUT", path="/_uploads/*", kind="lose", lose=(0, 499)))
    step = _put(url, b"b" * 1000, 1000, 4000)
    assert (step.status_code, step.json()["nextExpectedRanges"]) == (200, ["0-499", "2000"])
    last = _put(url, b"c" * 2000, 2000, 4000)
    assert (last.status_code, last.json()["nextExpectedRanges"]) == (200, ["0-499"]), "Outlook answers 200 here"
    assert _put(url, b"a" * 500, 0, 4000).status_code == 201
