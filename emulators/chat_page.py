"""The emulator's chat page: try the bot with no Telegram at all, acting as any person.

Served by `vestnik emulator` (and so by a `vestnik run` without a token) at /emulator. Plain HTML
and a little JavaScript, no external files: pick who you are, read what the bot sent you, type,
tap buttons.
"""

from __future__ import annotations

# A paper plane on a blue disc: the tab shows what it is, and browsers stop asking for a favicon.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<circle cx="16" cy="16" r="16" fill="#2a8bd4"/>'
    b'<path d="M7 15.5 24 9l-3 15-5.5-4.5-3 3 .5-4.5L20 12l-9 6z" fill="#fff"/></svg>'
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vestnik: try the bot</title>
<style>
 body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#eef1f5;color:#1b1f24}
 header{background:#2b5278;color:#fff;padding:.6rem 1rem}
 header form{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end}
 label{display:flex;flex-direction:column;font-size:12px}
 input,select,button{font:inherit;padding:.3rem .5rem}
 #log{max-width:40rem;margin:0 auto;padding:1rem;display:flex;flex-direction:column;gap:.5rem}
 .msg{background:#fff;border-radius:.6rem;padding:.5rem .7rem;white-space:pre-wrap;max-width:85%}
 .mine{align-self:flex-end;background:#d9fdd3}
 .kb{display:flex;gap:.3rem;margin-top:.4rem;flex-wrap:wrap}
 .kb button{border:1px solid #2b5278;background:#f5f8fc;border-radius:.4rem;cursor:pointer}
 .alert{align-self:center;background:#fff3cd}
 footer{position:sticky;bottom:0;background:#fff;padding:.5rem;display:flex;gap:.5rem;
        max-width:40rem;margin:0 auto}
 footer input{flex:1}
</style></head>
<body>
<header><form id="who">
 <label>Telegram user id<input id="uid" type="number" value="111" required></label>
 <label>First name<input id="name" value="Anna" required></label>
 <label>Language<select id="lang"><option>en</option><option>ru</option></select></label>
 <button>Act as this person</button>
</form></header>
<main id="log" aria-live="polite"></main>
<footer><form id="say" style="display:flex;gap:.5rem;flex:1">
 <label style="flex:1">Message<input id="text" autocomplete="off"
  placeholder="/start, /events, /settings … or an invite: /start i…"></label>
 <button>Send</button></form></footer>
<script>
const $ = (id) => document.getElementById(id);
let mine = [];
let lastSeen = 0;
function user() {
  return {id: Number($("uid").value), first_name: $("name").value,
          language_code: $("lang").value};
}
async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body)});
  return r.json();
}
async function refresh() {
  const u = user();
  const r = await fetch(`/emulator/messages?chat_id=${u.id}`);
  const messages = await r.json();
  const log = $("log");
  log.replaceChildren();
  // One sequence numbers the bot's messages and the person's own, so the chat reads in order;
  // a button's short answer sits right after the messages known when it came.
  const items = messages.map(m => ({...m, at: m.message_id}))
    .concat(mine.filter(m => m.user === u.id));
  lastSeen = Math.max(lastSeen, ...items.filter(m => !m.alert).map(m => m.at), 0);
  items.sort((a, b) => a.at - b.at);
  for (const m of items) {
    const div = document.createElement("div");
    div.className = "msg" + (m.mine ? " mine" : "") + (m.alert ? " alert" : "");
    div.textContent = m.text;
    if (m.reply_markup && m.reply_markup.inline_keyboard) {
      const kb = document.createElement("div");
      kb.className = "kb";
      for (const row of m.reply_markup.inline_keyboard) for (const b of row) {
        const button = document.createElement("button");
        button.textContent = b.text;
        button.onclick = async () => {
          const answer = await post("/emulator/press",
            {user: user(), chat_id: m.chat_id, message_id: m.message_id, data: b.callback_data});
          if (answer.text) mine.push({user: u.id, text: answer.text, alert: true,
                                      at: lastSeen + 0.5});
          setTimeout(refresh, 400);
        };
        kb.append(button);
      }
      div.append(kb);
    }
    log.append(div);
  }
}
$("who").onsubmit = (e) => { e.preventDefault(); refresh(); };
$("say").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  const said = {user: user().id, text, mine: true, at: Infinity};
  mine.push(said);
  $("text").value = "";
  const sent = await post("/emulator/send", {user: user(), text});
  if (sent.message_id) said.at = sent.message_id;
  setTimeout(refresh, 400);
};
setInterval(refresh, 2000);
refresh();
</script>
</body></html>
"""
