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
