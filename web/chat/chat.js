// The wsx chat page: one WebSocket to /ws speaking the JSON protocol documented in README.md
// ("Chat room"). Everything the server or another user sent is inserted with textContent, never
// as HTML.
"use strict";

(function () {
  const kMaxHistory = 500;        // messages kept per room
  const kBackoffFirstMs = 500;    // first reconnect delay; doubles up to kBackoffMaxMs
  const kBackoffMaxMs = 15000;
  const kRoomsRefreshMs = 5000;   // how often the room list is asked for while connected

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    nick: $("nick"),
    nickForm: $("nick-form"),
    joinForm: $("join-form"),
    roomInput: $("room-input"),
    joined: $("joined"),
    rooms: $("rooms"),
    messages: $("messages"),
    empty: $("empty"),
    sendForm: $("send-form"),
    messageInput: $("message-input"),
    send: $("send"),
    roomTitle: $("room-title"),
    menu: $("menu"),
  };

  const stored = (key, fallback) => {
    try {
      const value = localStorage.getItem(key);
      return value === null ? fallback : JSON.parse(value);
    } catch (e) {
      return fallback;
    }
  };
  const store = (key, value) => {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      // Private mode or a full quota: the page still works, it just forgets on reload.
    }
  };

  const state = {
    socket: null,
    attempt: 0,
    reconnectTimer: 0,
    roomsTimer: 0,
    nick: stored("wsx-chat-nick", ""),
    joined: new Set(stored("wsx-chat-rooms", [])),
    current: stored("wsx-chat-current", null),
    history: new Map(),  // topic -> [{kind, from, text, time}]
    unread: new Map(),   // topic -> count
    allRooms: [],
    maxTopic: 64,  // bytes; the server's welcome says
  };

  function setStatus(kind, text) {
    ui.status.className = "status status-" + kind;
    ui.status.textContent = text;
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function formatTime(ms) {
    const date = typeof ms === "number" ? new Date(ms) : new Date();
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function textOf(data) {
    if (typeof data === "string") return data;
    if (data && typeof data === "object" && typeof data.text === "string") return data.text;
    return JSON.stringify(data);
  }

  function addEntry(topic, entry) {
    if (!state.history.has(topic)) state.history.set(topic, []);
    const list = state.history.get(topic);
    list.push(entry);
    if (list.length > kMaxHistory) list.splice(0, list.length - kMaxHistory);
    if (topic === state.current) {
      appendEntry(entry);
    } else if (entry.kind === "message") {
      state.unread.set(topic, (state.unread.get(topic) || 0) + 1);
      renderJoined();
    }
  }

  // A note shown in the current room (or the first one) about the connection or an error.
  function notice(kind, text) {
    const entry = { kind, text, time: Date.now() };
    if (state.current) {
      addEntry(state.current, entry);
    } else {
      appendEntry(entry);
    }
  }

  function appendEntry(entry) {
    const item = document.createElement("li");
    if (entry.kind === "message") {
      if (entry.from === state.nick) item.className = "mine";
      const meta = document.createElement("div");
      meta.className = "meta";
      const from = document.createElement("span");
      from.className = "from";
      from.textContent = entry.from;
      const time = document.createElement("time");
      time.textContent = formatTime(entry.time);
      if (typeof entry.time === "number") time.dateTime = new Date(entry.time).toISOString();
      meta.append(from, time);
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = entry.text;
      item.append(meta, text);
    } else {
      item.className = entry.kind;
      item.textContent = formatTime(entry.time) + " · " + entry.text;
    }
    const atBottom =
      ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    ui.messages.append(item);
    if (atBottom || entry.kind === "message") ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function renderMessages() {
    ui.messages.replaceChildren();
    for (const entry of state.history.get(state.current) || []) appendEntry(entry);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function roomItem(topic) {
    const item = document.createElement("li");
    item.dataset.topic = topic;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = "# " + topic;
    item.append(name);
    return item;
  }

  function renderJoined() {
    ui.joined.replaceChildren();
    for (const topic of state.joined) {
      const item = roomItem(topic);
      if (topic === state.current) item.classList.add("current");
      const unread = state.unread.get(topic) || 0;
      if (unread > 0) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(unread);
        item.append(badge);
      }
      const leave = document.createElement("button");
      leave.className = "leave";
      leave.type = "button";
      leave.title = "Leave " + topic;
      leave.setAttribute("aria-label", "Leave " + topic);
      leave.textContent = "×";
      leave.addEventListener("click", (event) => {
        event.stopPropagation();
        leaveRoom(topic);
      });
      item.append(leave);
      item.addEventListener("click", () => selectRoom(topic));
      ui.joined.append(item);
    }
    if (state.joined.size === 0) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = "none yet";
      ui.joined.append(none);
    }
  }

  function renderAllRooms() {
    ui.rooms.replaceChildren();
    for (const room of state.allRooms) {
      const item = roomItem(room.topic);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = String(room.subscribers);
      count.title = room.subscribers + " member(s)";
      item.append(count);
      item.addEventListener("click", () => joinRoom(room.topic));
      ui.rooms.append(item);
    }
    if (state.allRooms.length === 0) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = "no rooms yet";
      ui.rooms.append(none);
    }
  }

  function updateComposer() {
    const usable = Boolean(state.current) && state.socket?.readyState === WebSocket.OPEN;
    ui.messageInput.disabled = !usable;
    ui.send.disabled = !usable;
    ui.empty.hidden = Boolean(state.current);
    ui.roomTitle.textContent = state.current ? "# " + state.current : "";
    ui.messageInput.placeholder = state.current ? "Message # " + state.current : "Message";
  }

  function persistRooms() {
    store("wsx-chat-rooms", [...state.joined]);
    store("wsx-chat-current", state.current);
  }

  function selectRoom(topic) {
    state.current = topic;
    state.unread.delete(topic);
    persistRooms();
    renderJoined();
    renderMessages();
    updateComposer();
    document.body.classList.remove("side-open");
    if (!ui.messageInput.disabled) ui.messageInput.focus();
  }

  // The server's rule (README, "Chat room"): 1-64 bytes of UTF-8 without control characters.
  function roomNameProblem(topic) {
    if (!topic) return "a room needs a name";
    if (new TextEncoder().encode(topic).length > state.maxTopic) {
      return "room names are at most " + state.maxTopic + " bytes";
    }
    if (/[\u0000-\u001f\u007f]/.test(topic)) return "room names cannot contain control characters";
    return null;
  }

  function joinRoom(topic) {
    topic = topic.trim();
    const problem = roomNameProblem(topic);
    if (problem) {
      notice("error", problem);
      return;
    }
    state.joined.add(topic);
    send({ type: "subscribe", topic });
    selectRoom(topic);
  }

  function leaveRoom(topic) {
    state.joined.delete(topic);
    state.unread.delete(topic);
    state.history.delete(topic);
    send({ type: "unsubscribe", topic });
    if (state.current === topic) state.current = [...state.joined][0] || null;
    persistRooms();
    renderJoined();
    renderMessages();
    updateComposer();
  }

  function handle(message) {
    switch (message.type) {
      case "welcome":
        if (!state.nick) {
          state.nick = message.nick;
          ui.nick.value = state.nick;
        }
        if (message.max_topic) {
          state.maxTopic = message.max_topic;
          ui.roomInput.maxLength = message.max_topic;
        }
        if (message.max_nick) ui.nick.maxLength = message.max_nick;
        break;
      case "nick":
        state.nick = message.nick;
        ui.nick.value = message.nick;
        store("wsx-chat-nick", state.nick);
        break;
      case "message":
        addEntry(message.topic, {
          kind: "message",
          from: String(message.from),
          text: textOf(message.data),
          time: message.time,
        });
        break;
      case "subscribed":
        if (!state.joined.has(message.topic)) {
          state.joined.add(message.topic);
          renderJoined();
        }
        send({ type: "rooms" });
        break;
      case "unsubscribed":
        send({ type: "rooms" });
        break;
      case "rooms":
        state.allRooms = Array.isArray(message.rooms) ? message.rooms : [];
        renderAllRooms();
        break;
      case "error":
        if (message.topic && state.joined.has(message.topic)) {
          if (/^cannot subscribe/.test(message.message)) {
            // The server refused the room: forget it rather than retry it on every reconnect.
            leaveRoom(message.topic);
          } else if (message.message === "not subscribed") {
            // The server lost track of the room (a reconnect raced the send): join again.
            send({ type: "subscribe", topic: message.topic });
          }
        }
        notice("error", "Server: " + message.message);
        break;
      case "pong":
        break;
      default:
        break;
    }
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws");
    state.socket = socket;
    setStatus("connecting", state.attempt === 0 ? "connecting…" : "reconnecting…");

    socket.addEventListener("open", () => {
      state.attempt = 0;
      setStatus("online", "online");
      if (state.nick) send({ type: "nick", nick: state.nick });
      for (const topic of state.joined) send({ type: "subscribe", topic });
      send({ type: "rooms" });
      clearInterval(state.roomsTimer);
      state.roomsTimer = setInterval(() => send({ type: "rooms" }), kRoomsRefreshMs);
      updateComposer();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        notice("error", "unreadable message from the server");
        return;
      }
      if (message && typeof message === "object") handle(message);
    });
    socket.addEventListener("close", () => {
      if (state.socket !== socket) return;
      clearInterval(state.roomsTimer);
      // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
      const delay =
        Math.min(kBackoffMaxMs, kBackoffFirstMs * 2 ** state.attempt) * (0.75 + Math.random() / 2);
      state.attempt += 1;
      setStatus("offline", "offline, retrying in " + Math.ceil(delay / 1000) + " s");
      state.reconnectTimer = setTimeout(connect, delay);
      updateComposer();
    });
  }

  ui.nickForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = ui.nick.value.trim();
    if (!nick) return;
    state.nick = nick;
    store("wsx-chat-nick", nick);
    send({ type: "nick", nick });
  });

  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    joinRoom(ui.roomInput.value);
    ui.roomInput.value = "";
  });

  ui.sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.messageInput.value;
    if (!text.trim() || !state.current) return;
    if (send({ type: "publish", topic: state.current, data: text })) ui.messageInput.value = "";
  });

  ui.menu.addEventListener("click", () => document.body.classList.toggle("side-open"));

  ui.nick.value = state.nick;
  if (state.current && !state.joined.has(state.current)) state.current = null;
  renderJoined();
  renderAllRooms();
  updateComposer();
  connect();
})();
