// Polls the status of running document jobs and reloads the page when one finishes.
document.addEventListener("DOMContentLoaded", () => {
  const cells = document.querySelectorAll("[data-status-url]");
  cells.forEach((cell) => {
    const poll = async () => {
      try {
        const response = await fetch(cell.dataset.statusUrl, { credentials: "same-origin" });
        if (!response.ok || response.redirected) {
          cell.querySelector(".status").textContent =
            "Suivi interrompu (session expirée ?) : rechargez la page.";
          return;
        }
        const job = await response.json();
        if (job.status === "done" || job.status === "failed") { window.location.reload(); return; }
        cell.querySelector(".status").textContent = job.label + (job.step ? " – " + job.step : "");
      } catch (e) { /* the next poll will tell */ }
      setTimeout(poll, 1500);
    };
    setTimeout(poll, 1000);
  });
});

// The key rotations' progress on the admin keys page: reloaded while one is running.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-rotations-url]");
  if (!box || !Array.from(box.querySelectorAll(".rotation-status"))
      .some((cell) => cell.textContent.trim() === "en cours")) return;
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.rotationsUrl, { credentials: "same-origin" });
      if (response.ok && !response.redirected) {
        const data = await response.json();
        if (!data.rotations.some((r) => r.status === "en cours")) { window.location.reload(); return; }
        box.querySelectorAll("tbody tr").forEach((row, i) => {
          const r = data.rotations[i];
          if (!r) return;
          const bar = row.querySelector("progress");
          bar.max = r.total || 1; bar.value = r.done;
          bar.nextSibling.textContent = " " + r.done + " / " + r.total;
          row.querySelector(".rotation-status").textContent = r.status;
        });
      }
    } catch (e) { /* the next poll will tell */ }
    setTimeout(poll, 1500);
  };
  setTimeout(poll, 1000);
});

// A double click sends a form once: a second submit of a form already on its way is ignored.
// The mark goes after a few seconds (a form that answers with a download leaves the page
// as it was) and when the page comes back from the browser's history.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented) return;  // another handler kept it from being sent
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  setTimeout(() => { delete form.dataset.sent; }, 5000);
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-sent]").forEach((form) => { delete form.dataset.sent; });
});

// The sheet form saves its draft by itself: every data-autosave seconds while it is typed
// in, and when the page is hidden or left (a fetch kept alive past the page). The server
// saves it as any draft (encrypted, audited); nothing is kept in the browser. Leaving with
// changes not saved yet asks for confirmation.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autosave]");
  if (!form) return;
  const status = document.getElementById("enregistrement-auto");
  let changed = false;
  let saving = false;
  const markChanged = () => { changed = true; };
  form.addEventListener("input", markChanged);
  form.addEventListener("change", markChanged);
  form.addEventListener("submit", () => { changed = false; });  // the page saves it
  const save = async (leaving) => {
    if (!changed || saving) return;
    saving = true;
    changed = false;
    const body = new FormData(form);
    body.set("action", "autosave");
    try {
      const response = await fetch(window.location.href, {
        method: "POST", body, credentials: "same-origin", keepalive: leaving,
        headers: { Accept: "application/json" },
      });
      const json = (response.headers.get("Content-Type") || "").includes("application/json");
      const answer = response.ok && json ? await response.json() : null;
      if (answer === null) {
        changed = true;
        status.textContent = "Enregistrement automatique interrompu (session expirée ?) : "
          + "enregistrez le brouillon avec le bouton.";
      } else {
        if (!answer.saved) changed = true;
        status.textContent = answer.message;
      }
    } catch (e) {
      changed = true;
      status.textContent = "Enregistrement automatique impossible pour le moment : "
        + "nouvel essai dans un instant.";
    }
    saving = false;
  };
  setInterval(() => save(false), Number(form.dataset.autosave) * 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") save(true);
  });
  window.addEventListener("pagehide", () => save(true));
  window.addEventListener("beforeunload", (event) => {
    if (changed) { event.preventDefault(); event.returnValue = ""; }
  });
});
