// Following GET /api/queue/events (SSE). The browser reconnects by itself after a dropped connection
// (sending Last-Event-ID); when the server refuses outright the stream is closed, and this opens a new
// one after a backoff, from the last id seen. `onState` hears "live" and "lost".
export const EVENTS = ["retry_scheduled", "completed", "dead_lettered", "cancelled", "redriven"];

export function follow(onEvent, onState) {
  let source = null;
  let lastId = null;
  let backoff = 1000;
  let stopped = false;
  let timer = null;

  function connect() {
    const url = lastId ? `/api/queue/events?since=${encodeURIComponent(lastId)}` : "/api/queue/events";
    source = new EventSource(url, { withCredentials: true });
    source.addEventListener("open", () => {
      backoff = 1000;
      onState("live");
    });
    source.addEventListener("error", () => {
      onState("lost");
      if (source.readyState === EventSource.CLOSED && !stopped) {
        source.close();
        timer = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 15000);
      }
    });
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => {
        lastId = event.lastEventId || lastId;
        let record = null;
        try { record = JSON.parse(event.data); } catch { record = null; }
        onEvent(name, record);
      });
    }
  }
  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}
