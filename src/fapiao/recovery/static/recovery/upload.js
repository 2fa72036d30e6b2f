// Evidence upload with drag and drop: each file is listed with its size and type before it is
// sent, then uploaded one by one with a progress bar.  Without JavaScript the form posts as usual.
(function () {
  "use strict";
  var form = document.querySelector("form[data-upload]");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var input = form.querySelector("input[type=file]");
  var zone = form.querySelector("[data-dropzone]");
  var queue = form.querySelector("[data-queue]");
  var button = form.querySelector("[data-upload-button]");
  var limit = parseInt(form.getAttribute("data-max-bytes"), 10) * 1024 * 1024;
  var picked = [];

  function size(bytes) {
    if (bytes < 1024) { return bytes + " B"; }
    if (bytes < 1024 * 1024) { return (bytes / 1024).toFixed(1) + " KB"; }
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function show() {
    queue.textContent = "";
    picked.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "upload-item";
      var name = document.createElement("span");
      name.textContent = item.file.name + " · " + size(item.file.size) + " · " + (item.file.type || "?");
      li.appendChild(name);
      if (item.file.size > limit) {
        li.classList.add("too-large");
        var warn = document.createElement("strong");
        warn.textContent = " " + form.getAttribute("data-too-large");
        li.appendChild(warn);
      }
      item.bar = document.createElement("progress");
      item.bar.max = 100; item.bar.value = 0;
      li.appendChild(item.bar);
      item.status = document.createElement("span");
      item.status.className = "upload-status";
      li.appendChild(item.status);
      queue.appendChild(li);
    });
  }

  function add(files) {
    for (var i = 0; i < files.length; i++) { picked.push({ file: files[i] }); }
    show();
  }

  zone.classList.add("js-picker");  // the label stands in for the browser's own file button
  input.addEventListener("change", function () { picked = []; add(input.files); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files) { add(event.dataTransfer.files); }
  });

  function send(index, failures) {
    if (index >= picked.length) {
      if (!failures) { window.location.reload(); } else { button.disabled = false; }
      return;
    }
    var item = picked[index];
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
    data.append("type", form.querySelector("select[name=type]").value);
    data.append("file", item.file, item.file.name);
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) { item.bar.value = Math.round(100 * event.loaded / event.total); }
    });
    request.addEventListener("load", function () {
      var failed = request.status >= 400;
      if (failed) {
        var text = request.statusText;
        try {
          var body = JSON.parse(request.responseText);
          text = Object.keys(body.errors || {}).map(function (k) { return body.errors[k].join(" "); }).join(" ");
        } catch (ignored) { /* keep the status text */ }
        item.status.textContent = " " + text;
        item.status.classList.add("field-error");
      } else {
        item.bar.value = 100;
        item.status.textContent = " ✓";
      }
      send(index + 1, failures + (failed ? 1 : 0));
    });
    request.addEventListener("error", function () {
      item.status.textContent = " " + form.getAttribute("data-network-error");
      send(index + 1, failures + 1);
    });
    request.send(data);
  }

  form.addEventListener("submit", function (event) {
    if (!picked.length) { return; }  // let the browser post the (empty) form and show the error
    event.preventDefault();
    button.disabled = true;
    send(0, 0);
  });
}());
