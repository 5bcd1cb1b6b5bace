// Progressive enhancement: "Copy" buttons appear only when this script runs; without it the
// command text is still selectable with one click (user-select: all).
(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (ok) resolve();
      else reject(new Error("copy failed"));
    });
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.querySelector(".label");
    var status = button.parentElement && button.parentElement.querySelector("[role=status]");
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(source.textContent.trim()).then(
        function () {
          if (label) label.textContent = "Copied";
          if (status) status.textContent = "Copied to the clipboard";
          button.classList.add("done");
          setTimeout(function () {
            if (label) label.textContent = "Copy";
            if (status) status.textContent = "";
            button.classList.remove("done");
          }, 2000);
        },
        function () {
          if (status) status.textContent = "Could not copy; select the text instead";
        },
      );
    });
  });
})();
