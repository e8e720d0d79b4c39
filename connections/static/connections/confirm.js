"use strict";
// Asks before a form marked data-confirm is submitted (e.g. Disconnect). A file rather than an
// inline onsubmit, so the Content-Security-Policy can forbid inline script.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
