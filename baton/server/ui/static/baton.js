// Baton's web UI: live fragments over one server-sent-event stream per page, the task drawer,
// paging inside a fragment, actions (with a confirmation or a note, and the session's CSRF token),
// the form that raises an event and the one that starts (or previews) a backfill.
// Plain script, no build step; every page also works without it (links are real links).
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  function toLogin() {
    location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  async function fetchHtml(url) {
    const r = await fetch(url, { headers: { "X-Baton-Fragment": "1" }, cache: "no-cache", credentials: "same-origin" });
    if (r.status === 401) { toLogin(); return null; }
    if (!r.ok) throw new Error(r.status + " " + (await r.text()).slice(0, 200));
    return await r.text();
  }

  // --- fragments ----------------------------------------------------------------------------
  const lastFetch = new Map();
  async function refresh(section) {
    const min = parseFloat(section.dataset.minS || "0") * 1000;
    const now = Date.now();
    if (now - (lastFetch.get(section) || 0) < min) { schedule(section, min); return; }
    lastFetch.set(section, now);
    const text = await fetchHtml(section.dataset.src);
    if (text !== null && text !== section.dataset.body) {
      section.dataset.body = text;
      section.innerHTML = text;
    }
  }
  const pending = new Set();
  function schedule(section, delay) {  // a throttled fragment is fetched once its pause ends
    if (pending.has(section)) return;
    pending.add(section);
    setTimeout(() => { pending.delete(section); refresh(section).catch(flashError); }, delay);
  }
  // A fragment out of view is not fetched again while it stays out: it is marked stale, and
  // fetched when it scrolls into view (a page showing its header costs the server no timeline).
  const inView = new Set();
  const watcher = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) { inView.delete(entry.target); continue; }
      inView.add(entry.target);
      if (entry.target.dataset.stale) { delete entry.target.dataset.stale; refresh(entry.target).catch(flashError); }
    }
  }) : null;
  function refreshIfSeen(section) {
    if (!watcher || inView.has(section)) refresh(section).catch(flashError);
    else section.dataset.stale = "1";
  }
  function refreshNamed(names) {
    for (const name of names) {
      const section = document.querySelector('[data-fragment="' + name + '"]');
      if (section) refreshIfSeen(section);
    }
  }
  function refreshAll() {
    document.querySelectorAll("[data-fragment]").forEach(refreshIfSeen);
  }
  function place(fragments) {  // fragments the stream carried, by name
    for (const [name, text] of Object.entries(fragments)) {
      const section = document.querySelector('[data-fragment="' + name + '"]');
      if (section && text !== section.dataset.body) { section.dataset.body = text; section.innerHTML = text; }
    }
  }

  // --- the live stream: open while the tab is visible ---------------------------------------
  let source = null;
  function connect() {
    const main = document.querySelector("main[data-live]");
    if (!main || source) return;
    source = new EventSource(main.dataset.live);
    source.addEventListener("change", (e) => {
      const data = JSON.parse(e.data);
      if (data.html) place(data.html);
      if (data.changed) refreshNamed(data.changed); else refreshAll();
    });
    source.onerror = () => { if (source && source.readyState === EventSource.CLOSED) { source = null; setTimeout(connect, 3000); } };
  }
  function disconnect() { if (source) { source.close(); source = null; } }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) disconnect(); else { connect(); refreshAll(); }
  });

  // --- flash messages -----------------------------------------------------------------------
  // Characters that display as nothing (bidi controls, zero-widths…) shown as markers, by the
  // rule of baton/ui/invisibles.py: a message can quote a name from the server's answer.
  const INVISIBLE = /[\p{Cf}\u034F\u115F\u1160\u17B4\u17B5\u3164\uFE00-\uFE0F\uFFA0\u{E0100}-\u{E01EF}]/gu;
  const reveal = (text) => text.replace(INVISIBLE,
    (c) => "\u27E8U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "\u27E9");
  function flash(text, kind) {
    const box = document.getElementById("flash");
    box.textContent = reveal(String(text));
    box.className = kind || "ok";
  }
  function flashError(err) { flash(String(err.message || err), "problem"); }

  // --- the task drawer ----------------------------------------------------------------------
  async function openDrawer(url) {
    const text = await fetchHtml(url);
    if (text === null) return;
    const drawer = document.getElementById("drawer");
    drawer.innerHTML = text;
    drawer.hidden = false;
    drawer.dataset.src = url;
    if (drawer.querySelector("pre[data-tail]")) setTimeout(tail, 0);
  }
  function closeDrawer() {
    const drawer = document.getElementById("drawer");
    drawer.hidden = true;
    drawer.innerHTML = "";
    delete drawer.dataset.src;
  }

  // --- a running attempt's output, tailed while the drawer shows it ---------------------------
  const TAIL_MS = 2000;
  let tailing = false;
  async function tailOnce() {
    const drawer = document.getElementById("drawer");
    const tails = drawer.hidden ? [] : Array.from(drawer.querySelectorAll("pre[data-tail]"));
    let ended = false;
    for (const pre of tails) {
      const r = await fetch(pre.dataset.tail + "&offset=" + pre.dataset.offset, { credentials: "same-origin" });
      if (r.status === 401) { toLogin(); return false; }
      if (!r.ok) continue;
      const chunk = await r.json();
      if (chunk.text) pre.append(chunk.text);
      pre.dataset.offset = String(chunk.next_offset);
      ended = ended || !chunk.running;
    }
    if (ended && drawer.dataset.src) await openDrawer(drawer.dataset.src);  // the attempt's final log
    return tails.length > 0 && !ended;
  }
  async function tail() {
    if (tailing) return;
    tailing = true;
    try {
      while (!document.hidden && await tailOnce()) await new Promise((done) => setTimeout(done, TAIL_MS));
    } catch (err) {
      flashError(err);
    } finally {
      tailing = false;
    }
  }

  // --- actions ------------------------------------------------------------------------------
  async function post(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    let sent = button.dataset.body || null;
    if (button.dataset.prompt) {  // asks for a note (pausing a schedule): cancelling the prompt does nothing
      const note = window.prompt(button.dataset.prompt, "");
      if (note === null) return;
      sent = JSON.stringify({ note: note.trim() });
    }
    button.disabled = true;
    try {
      const r = await fetch(button.dataset.url, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: sent,
      });
      if (r.status === 401) { toLogin(); return; }
      if (r.type === "opaqueredirect" || r.redirected) { location.href = "/ui/login"; return; }
      const body = await r.json().catch(() => ({}));
      if (!r.ok) { flash(body.detail || ("refused: " + r.status), "problem"); return; }
      flash(body.message || "done", "ok");
      refreshAll();
      const drawer = document.getElementById("drawer");
      if (drawer.dataset.src) openDrawer(drawer.dataset.src).catch(flashError);
    } finally {
      button.disabled = false;
    }
  }

  // --- raising an event: a graph page's form ---------------------------------------------------
  // Each field goes as typed (a checkbox as true or false): the server turns text into the
  // parameter's type and answers the API's own problems, each shown next to the field it names.
  function formValues(form) {
    const values = {}, problems = [];
    for (const input of form.querySelectorAll("[data-field]")) {
      const name = input.dataset.field;
      if (input.type === "checkbox") values[name] = input.checked;
      else if (input.type === "number" && input.validity.badInput) {  // the browser keeps no text of it
        problems.push("parameter '" + name + "': must be " + (input.step === "1" ? "an integer" : "a number"));
      } else values[name] = input.value;
    }
    const key = form.querySelector("[data-key]").value.trim();
    const body = { values: values, idempotency_key: key || null };
    const priority = form.querySelector("[data-priority-field]");
    if (priority && priority.value.trim() !== "") {
      const n = Number(priority.value);
      if (priority.validity.badInput || !Number.isInteger(n)) problems.push("priority: must be an integer");
      else body.priority = n;
    }
    return { body: body, problems: problems };
  }
  function problemLines(answer) {
    const lines = answer.errors ? answer.errors.map((e) => (e.where ? e.where + ": " : "") + e.detail) : [answer.detail];
    if (answer.more_errors) lines.push("… and " + answer.more_errors + " more");
    return lines;
  }
  function eventLink(eventId, text) {
    const link = document.createElement("a");
    link.href = "/ui/events/" + eventId;
    link.textContent = text + eventId;
    return link;
  }
  function clearProblems(section) {
    section.querySelectorAll(".field-problem").forEach((p) => { p.hidden = true; p.textContent = ""; });
    section.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
    for (const box of section.querySelectorAll(".problems, .outcome")) { box.hidden = true; box.replaceChildren(); }
  }
  function showProblems(section, lines, eventId) {
    const fields = new Map(Array.from(section.querySelectorAll(".field[data-param]"), (f) => [f.dataset.param, f]));
    const unplaced = [];
    for (const line of lines) {
      const named = /^parameter '([^']+)'/.exec(line);
      const field = named && fields.get(named[1]);
      if (!field) { unplaced.push(line); continue; }
      const shown = field.querySelector(".field-problem");
      shown.textContent = (shown.textContent ? shown.textContent + "\n" : "") + reveal(line);
      shown.hidden = false;
      field.classList.add("invalid");
    }
    const box = section.querySelector(".problems");
    const head = document.createElement("p");
    head.textContent = "The event was not raised" + (unplaced.length ? ":" : ": see the fields marked below.");
    box.append(head);
    if (unplaced.length) {
      const list = document.createElement("ul");
      for (const line of unplaced) { const item = document.createElement("li"); item.textContent = reveal(line); list.append(item); }
      box.append(list);
    }
    if (eventId) { const p = document.createElement("p"); p.append(eventLink(eventId, "Open event #")); box.append(p); }
    box.hidden = false;
  }
  async function raise(form) {
    const section = form.closest("section");
    const { body, problems } = formValues(form);
    clearProblems(section);
    if (problems.length) { showProblems(section, problems, null); return; }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const r = await fetch(form.dataset.submit, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(body),
      });
      if (r.status === 401) { toLogin(); return; }
      if (r.type === "opaqueredirect") { location.href = "/ui/login"; return; }
      const answer = await r.json().catch(() => ({ detail: "refused: " + r.status }));
      if (!r.ok) { showProblems(section, problemLines(answer), answer.event_id); return; }
      if (answer.created) { location.href = answer.url; return; }
      const outcome = section.querySelector(".outcome");
      outcome.append(reveal(answer.message) + ". ", eventLink(answer.event_id, "Open event #"));
      outcome.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  // --- starting a backfill: the schedules page's form, with a dry-run preview ---------------------
  function backfillBody(form, dryRun) {
    const field = (name) => form.querySelector('[data-field="' + name + '"]');
    const most = parseInt(field("max_running").value, 10);
    return { schedule: field("schedule").value, start: field("start").value, end: field("end").value,
             max_running: Number.isNaN(most) ? 0 : most, rerun: field("rerun").checked, dry_run: dryRun };
  }
  function showPreview(box, lines, problem) {
    box.replaceChildren(...lines.map((line) => { const p = document.createElement("p"); p.textContent = reveal(line); return p; }));
    box.className = "preview" + (problem ? " problem" : "");
    box.hidden = false;
  }
  async function backfill(form, dryRun) {
    const box = form.parentElement.querySelector(".preview");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const r = await fetch(form.dataset.backfill, {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify(backfillBody(form, dryRun)),
      });
      if (r.status === 401) { toLogin(); return; }
      if (r.type === "opaqueredirect") { location.href = "/ui/login"; return; }
      const answer = await r.json().catch(() => ({ detail: "refused: " + r.status }));
      if (!r.ok) { showPreview(box, problemLines(answer), true); return; }
      if (!answer.dry_run) { location.href = answer.url; return; }
      const lines = ["Dry run: " + answer.message + "."];
      if (answer.first.length) lines.push("First: " + answer.first.join(", "));
      if (answer.last.length) lines.push("Last: " + answer.last.join(", "));
      lines.push("Nothing was stored: start it to raise them.");
      showPreview(box, lines, false);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  function toBackfillForm(button) {  // a schedule row's "Backfill…": its schedule, in the form below
    const form = document.querySelector("form[data-backfill]");
    if (!form) return;
    form.querySelector('[data-field="schedule"]').value = button.dataset.schedule;
    form.scrollIntoView({ behavior: "smooth", block: "center" });
    form.querySelector('[data-field="start"]').focus();
  }

  document.addEventListener("submit", (e) => {
    const backfillForm = e.target.closest("form[data-backfill]");
    if (backfillForm) { e.preventDefault(); backfill(backfillForm, false).catch(flashError); return; }
    const form = e.target.closest("form[data-submit]");
    if (!form) return;
    e.preventDefault();
    raise(form).catch(flashError);
  });

  document.addEventListener("click", (e) => {
    const target = e.target.closest("a, button");
    if (!target || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (target.dataset.drawer) { e.preventDefault(); openDrawer(target.dataset.drawer).catch(flashError); return; }
    if (target.dataset.page) {  // a page of a fragment: fetched into it, kept as its source
      e.preventDefault();
      const section = document.querySelector('[data-fragment="' + target.dataset.page + '"]');
      section.dataset.src = target.getAttribute("href");
      lastFetch.delete(section);
      refresh(section).catch(flashError);
      return;
    }
    if (target.hasAttribute("data-more")) {
      e.preventDefault();
      fetchHtml(target.getAttribute("href")).then((text) => { if (text !== null) target.outerHTML = text; }).catch(flashError);
      return;
    }
    if (target.hasAttribute("data-backfill-preview")) { e.preventDefault(); backfill(target.closest("form"), true).catch(flashError); return; }
    const action = target.dataset.action;
    if (action === "backfill-form") { e.preventDefault(); toBackfillForm(target); return; }
    if (action === "post" || action === "logout") { e.preventDefault(); post(target); }
    else if (action === "close-drawer") { e.preventDefault(); closeDrawer(); }
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDrawer(); });

  function loginFromLink() {  // baton dev prints /ui/login#token=…: the fragment never reaches a server
    const form = document.querySelector('form[action="/ui/login"]');
    const found = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!form || !found) return;
    history.replaceState(null, "", location.pathname + location.search);
    form.querySelector('input[name="token"]').value = decodeURIComponent(found[1]);
    form.submit();
  }

  document.addEventListener("DOMContentLoaded", () => {
    loginFromLink();
    if (watcher) document.querySelectorAll("[data-fragment]").forEach((s) => watcher.observe(s));
    connect();
    const main = document.querySelector("main[data-refresh-s]");
    if (main) setInterval(() => { if (!document.hidden) refreshAll(); }, parseFloat(main.dataset.refreshS) * 1000);
  });
})();
