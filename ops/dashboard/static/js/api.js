// The Ops API, as the page calls it: the session cookie goes by itself; state-changing calls carry
// the session's CSRF token. A 401 means the session ended: the app goes back to sign-in.

let csrf = null;
let onSignedOut = () => {};

export function useSession(token, signedOut) {
  csrf = token;
  onSignedOut = signedOut;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function detailOf(body, status) {
  if (body && typeof body === "object" && "detail" in body) {
    const d = body.detail;
    if (Array.isArray(d)) return d.map((p) => `${(p.loc || []).join(".")}: ${p.msg}`).join("; ");
    return String(d);
  }
  return `HTTP ${status}`;
}

export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(url, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = reply.headers.get("content-type") || "";
  const data = type.includes("json") ? await reply.json() : await reply.text();
  if (reply.status === 401) {
    onSignedOut();
    throw new ApiError(401, "signed out");
  }
  if (!reply.ok) throw new ApiError(reply.status, detailOf(data, reply.status));
  return data;
}

export async function session(method = "GET", body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch("/dashboard/session", {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await reply.json();
  if (!reply.ok) throw new ApiError(reply.status, detailOf(data, reply.status));
  return data;
}
