// permledger console: the little the pages need beyond HTML. Everything works without it but
// live rows, copying a digest and the slider's own submit.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The moment slider: say the position while it moves; show it when the pointer lets it go.
  // From the keyboard, arrows move it and Enter or the Show button shows the position.
  for (const range of document.querySelectorAll("input[type=range][data-autosubmit]")) {
    const out = range.form.querySelector("output");
    let dragged = false;
    range.addEventListener("pointerdown", () => { dragged = true; });
    range.addEventListener("input", () => { if (out) out.value = range.value; });
    range.addEventListener("change", () => { if (dragged) range.form.requestSubmit(); });
    range.addEventListener("keydown", (e) => { if (e.key === "Enter") range.form.requestSubmit(); });
  }

  // Any form that loads a page says so while it does.
  for (const form of document.querySelectorAll("form[method=get]")) {
    form.addEventListener("submit", () => {
      const main = document.getElementById("main");
      if (main) { main.setAttribute("aria-busy", "true"); main.classList.add("loading"); }
    });
  }

  // Copy buttons: the text of the element they name.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(document.getElementById(button.dataset.copy));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }

  // The last page of a trail: new entries, rendered by the server, as they are recorded.
  const table = document.querySelector("table[data-live]");
  if (table && window.EventSource) {
    const status = document.querySelector("[data-live-status]");
    const body = table.tBodies[0];
    let count = 0;
    const source = new EventSource(table.dataset.live);
    source.addEventListener("entry", (e) => {
      if (document.getElementById("event-" + e.lastEventId)) return;
      body.insertAdjacentHTML("beforeend", e.data);
      body.lastElementChild.classList.add("new");
      count += 1;
      if (status) status.textContent = count === 1
        ? "1 new event arrived since this page was loaded."
        : `${count} new events arrived since this page was loaded.`;
    });
    source.addEventListener("error", () => {
      if (status && source.readyState === EventSource.CLOSED) {
        status.textContent = "Live updates stopped; reload the page to see new events.";
      }
    });
  }
});
