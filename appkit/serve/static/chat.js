// The web chat page of `appkit serve`: talks to the support app through the HTTP API.
// A conversation is created on the first message; replies stream as server-sent events.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const list = $("messages"), status = $("status"), input = $("message"), sendButton = $("send");
  let conversation = Number(sessionStorage.getItem("appkit-conversation")) || null;

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = localStorage.getItem("appkit-key");
    if (key) h["Authorization"] = "Bearer " + key;
    return h;
  }

  async function api(path, body) {
    const response = await fetch(path, { method: body === undefined ? "GET" : "POST", headers: headers(),
                                         body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw await failure(response);
    return response;
  }

  async function failure(response) {
    let message = `the server answered ${response.status}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    if (response.status === 401) $("key-form").hidden = false;
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      message = "The assistant is busy" + (wait ? `; try again in ${wait} s.` : ".");
    }
    return new Error(message);
  }

  function bubble(role, text) {
    const li = document.createElement("li");
    li.dataset.role = role;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.appendChild(body);
    list.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  function rateButtons(li, messageId) {
    const box = document.createElement("span");
    box.className = "rate";
    for (const [rating, label, cls] of [[1, "\u{1F44D} Helpful", "rate-up"], [-1, "\u{1F44E} Not helpful", "rate-down"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.className = cls; b.textContent = label; b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", async () => {
        try {
          await api(`/v1/conversations/${conversation}/messages/${messageId}/feedback`, { rating });
          box.querySelectorAll("button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
          li.dataset.rated = String(rating);
          status.textContent = "";
        } catch (e) { status.textContent = e.message; }
      });
      box.appendChild(b);
    }
    li.appendChild(box);
  }

  function showHandoff(on) { $("handoff").hidden = !on; }

  async function ensureConversation() {
    if (conversation) return conversation;
    const created = await (await api("/v1/conversations", {})).json();
    conversation = created.id;
    sessionStorage.setItem("appkit-conversation", String(conversation));
    return conversation;
  }

  // Reads "data: {...}\n\n" events from a fetch body and calls onEvent for each.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
  }

  async function send(text) {
    bubble("user", text);
    const reply = bubble("assistant", "");
    const replyText = reply.querySelector(".text");
    reply.dataset.streaming = "1";
    sendButton.disabled = true;
    try {
      const id = await ensureConversation();
      const response = await api(`/v1/conversations/${id}/messages`, { content: text, stream: true });
      await readEvents(response, (event) => {
        if (event.type === "delta") {
          replyText.textContent += event.content;
        } else if (event.type === "done") {
          if (event.reply) {
            replyText.textContent = event.reply.content;
            reply.dataset.messageId = String(event.reply.id);
            rateButtons(reply, event.reply.id);
          }
          showHandoff(event.conversation.status === "escalated");
          reply.dataset.done = "1";
        } else if (event.type === "error") {
          throw new Error(event.error.message);
        }
      });
      status.textContent = "";
    } catch (e) {
      status.textContent = e.message;
      if (!replyText.textContent) reply.remove();
    } finally {
      delete reply.dataset.streaming;
      sendButton.disabled = false;
    }
  }

  async function restore() {
    if (!conversation) return;
    try {
      const conv = await (await api(`/v1/conversations/${conversation}`)).json();
      for (const m of conv.messages) {
        const li = bubble(m.role, m.content);
        if (m.role === "assistant") { li.dataset.messageId = String(m.id); li.dataset.done = "1"; rateButtons(li, m.id); }
      }
      showHandoff(conv.status === "escalated");
    } catch (_) {
      conversation = null;  // gone, or another key's: start afresh
      sessionStorage.removeItem("appkit-conversation");
    }
  }

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || sendButton.disabled) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("send-form").requestSubmit(); }
  });
  $("new-chat").addEventListener("click", () => {
    conversation = null; sessionStorage.removeItem("appkit-conversation");
    list.textContent = ""; showHandoff(false); status.textContent = "";
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("appkit-key", $("api-key").value.trim());
    $("key-form").hidden = true; status.textContent = "Key saved; send your message again.";
    restore();
  });
  restore();
})();
